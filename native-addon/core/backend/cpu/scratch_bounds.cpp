#include "backend/cpu/scratch_bounds.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/attention_buffers.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/weight_gemm_driver.h"
#include "model/activations.h"
#include "model/blocks.h"

namespace ps {

CpuScratchEstimate estimate_cpu_scratch(const ModelDims& d, const CpuScratchPlan& p) {
  const int threads = std::max(1, p.threads);
  const int rows = p.batch * p.positions;
  const int keys = p.prefix + p.positions;
  CpuScratchEstimate e;

  // Attention (attention.cpp): backward packs K twice (blocks and rows) and V
  // once, and gives every thread a dK and a dV partial; forward packs fewer.
  const uint64_t packed = attn_packed_floats(p.batch, d.Hkv, keys, d.hd) * sizeof(float);
  e.attention_bytes = 3 * packed + static_cast<uint64_t>(threads) * attn_scratch_floats(d.hd) * sizeof(float);
  e.attention_partials_bytes = 2 * static_cast<uint64_t>(threads) * packed;

  // Every product a step or an evaluation runs (model/linear.cpp,
  // methods/lora.cpp via CpuBackend::lora_*, methods/dora.cpp,
  // model/loss_head.cpp, methods/prefix_tuning.cpp), as C[M, N] = A[M, K] B[K, N].
  struct Product {
    int M, N, K;
  };
  std::vector<Product> fp32;    // the fp32 GEMM (gemm.cpp)
  std::vector<Product> stored;  // a weight read as stored (weight_gemm_driver.h): N = its outputs, K = the reduction
  const int r = p.lora_rank, chunk = loss_chunk_rows(rows, d.V), head_slice = std::min(d.V, kHeadGradRows);
  const int linears[][2] = {{d.D, d.Dq}, {d.D, d.Dkv}, {d.Dq, d.D}, {d.D, d.F}, {d.F, d.D}};  // {in, out}
  for (const auto& io : linears) {
    const int in = io[0], out = io[1];
    auto& base = p.stored_linears ? stored : fp32;
    base.push_back({rows, out, in});  // y = x W^T
    base.push_back({rows, in, out});  // dx = dy W
    if (p.full) fp32.push_back({out, in, rows});  // dW = dy^T x
    if (r > 0) {
      // lora_forward / lora_backward (every linear: the targets are a subset)
      for (const Product& q : {Product{rows, r, in}, Product{rows, out, r}, Product{out, r, rows},
                               Product{rows, r, out}, Product{r, in, rows}, Product{rows, in, r}})
        fp32.push_back(q);
      if (p.dora) {
        base.push_back({r, out, in});  // A W^T: the base product of A's rows
        fp32.push_back({r, r, in});    // A A^T
        fp32.push_back({out, r, r});   // B (A A^T)
      }
    }
  }
  auto& head = p.stored_head ? stored : fp32;
  head.push_back({chunk, d.V, d.D});         // logits
  head.push_back({chunk, d.D, head_slice});  // dh, a slice of the vocabulary at a time
  if (p.full) fp32.push_back({d.V, d.D, chunk});
  if (p.prefix > 0 && p.prefix_hidden > 0) {
    const int P = p.prefix, enc = p.prefix_hidden, table = 2 * d.L * d.Dkv;
    for (const Product& q : {Product{P, enc, d.Dkv}, Product{P, table, enc}, Product{table, enc, P},
                             Product{P, enc, table}, Product{enc, d.Dkv, P}, Product{P, d.Dkv, enc}})
      fp32.push_back(q);
  }

  // The caller's buffers hold the largest any product asks; the 4-bit /
  // 16-bit GEMMs' op(B) slices are per thread: the caller's takes any
  // product's, the other threads' only those of products run in parallel.
  const gemm::KernelSet& ks = gemm::default_kernels();
  size_t pack = 0, shared = 0;
  for (const Product& q : fp32) {
    const gemm::GemmWorkspace w = gemm::gemm_workspace_floats(ks, q.M, q.N, q.K, threads);
    pack = std::max(pack, w.pack);
    shared = std::max(shared, w.shared_a);
  }
  size_t packed_a = 0, caller_b = 0, worker_b = 0;
  for (const Product& q : stored) {
    const int m = std::min(q.M, weightgemm::block_rows(ks));  // fused_gemm's largest block
    const weightgemm::BlockPlan plan = weightgemm::plan_block(ks, m, q.N, q.K, threads);
    const size_t b = weightgemm::packed_b_floats(ks, plan.max_cols, plan.kstep);
    packed_a = std::max(packed_a, weightgemm::packed_a_floats(ks, m, q.K));
    caller_b = std::max(caller_b, b);
    if (plan.threads > 1) worker_b = std::max(worker_b, b);
  }
  const uint64_t gemm = (pack + shared) * sizeof(float);
  const uint64_t weight = (packed_a + caller_b + static_cast<uint64_t>(threads - 1) * worker_b) * sizeof(float);
  e.gemm_bytes = gemm;
  e.weight_gemm_bytes = weight;
  return e;
}

}  // namespace ps
