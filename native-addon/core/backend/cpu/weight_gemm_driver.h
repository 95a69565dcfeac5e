// The blocked GEMM against a stored weight (NF4 in nf4_gemm.cpp, 16-bit in
// half_gemm.cpp): the fp32 GEMM's blocking, packing and micro-kernels
// (gemm_kernels.h), with op(B) converted to fp32 while it is packed, so the
// results equal the fp32 GEMM on the converted weight bit for bit. A weight
// format supplies one thing: `run(first, len, dst)`, which writes elements
// [first, first + len) of the weight's row-major storage to dst as fp32.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gemm_kernels.h"
#include "threadpool.h"
#include "workspace.h"

namespace ps {
namespace weightgemm {

constexpr int kMbMax = 528;  // rows per block, as the fp32 GEMM's blocks (gemm.cpp)
constexpr int kNbMax = 512;  // output columns per task, as the fp32 GEMM's blocks
constexpr double kParallelMinFmas = 1 << 20;  // the fp32 driver's threshold: below it one thread is faster

inline int ceil_div(int x, int m) { return (x + m - 1) / m; }
inline int round_up(int x, int m) { return ceil_div(x, m) * m; }
// gemm.cpp's: the summation order depends on K and the kernel set only.
inline int k_block(int K, int kc_max) {
  const int blocks = ceil_div(K, kc_max);
  return round_up(ceil_div(K, blocks), 8);
}

// C[M, N] = 0 when beta is 0 (a product that multiplies nothing), else kept.
inline void zero_or_keep(int M, int N, float beta, float* C, int ldc) {
  if (beta != 0.0f) return;
  for (int i = 0; i < M; ++i) std::fill(C + (size_t)i * ldc, C + (size_t)i * ldc + N, 0.0f);
}

// NT: op(B) = W^T (forward, W [Nout, Kred]); NN: op(B) = W (input gradient, W [Kred, Nout]).
enum class Layout { NT, NN };

// Per-thread buffers shared by every weight format (calls on a thread never overlap).
inline Workspace& packed_b_workspace() {  // one task's packed op(B) slice + the nt staging tile
  thread_local Workspace w("the weight GEMM workspace");
  return w;
}
inline Workspace& packed_a_workspace() {  // the caller's packed op(A), shared by all tasks
  thread_local Workspace w("the weight GEMM workspace");
  return w;
}

// The rows fused_gemm hands fused_block at once (whole micro-panels, at most kMbMax).
inline int block_rows(const gemm::KernelSet& ks) { return std::max(1, kMbMax / ks.mr) * ks.mr; }

// What fused_block's Workspaces hold, for the memory estimate (scratch_bounds.h);
// fused_block sizes them with these. The caller's packed op(A) of M rows (at
// most block_rows) and a reduction of Kred: one region per k-block.
inline size_t packed_a_region_floats(const gemm::KernelSet& ks, int M, int kstep) {
  return ((size_t)round_up(M, ks.mr) * kstep + gemm::kPackSlack + 15) / 16 * 16;
}
inline size_t packed_a_floats(const gemm::KernelSet& ks, int M, int Kred) {
  const int kstep = k_block(Kred, ks.kc_max);
  return packed_a_region_floats(ks, M, kstep) * ceil_div(Kred, kstep);
}
// One task's packed op(B) slice of max_cols columns and the nt staging tile.
inline size_t packed_b_floats(const gemm::KernelSet& ks, int max_cols, int kstep) {
  return ((size_t)max_cols * kstep + gemm::kPackSlack + 15) / 16 * 16 + (size_t)ks.nr * kstep + gemm::kPackSlack;
}

// How fused_block deals a block of M rows: on how many threads, and column
// tasks of at most max_cols (nr panels dealt evenly, at most kNbMax wide, at
// least two per thread when there are enough panels).
struct BlockPlan {
  int threads, kstep, ntiles, max_cols;
};
inline BlockPlan plan_block(const gemm::KernelSet& ks, int M, int Nout, int Kred, int pool_threads) {
  BlockPlan p;
  const bool parallel = pool_threads > 1 && (double)M * Nout * Kred >= kParallelMinFmas;
  p.threads = parallel ? pool_threads : 1;
  p.kstep = k_block(Kred, ks.kc_max);
  const int panels = ceil_div(Nout, ks.nr);
  p.ntiles = ceil_div(panels, std::max(1, kNbMax / ks.nr));
  if (p.threads > 1) p.ntiles = std::max(p.ntiles, std::min(panels, 2 * p.threads));
  p.max_cols = ceil_div(panels, p.ntiles) * ks.nr;
  return p;
}

// Packs op(B) rows [k0, k0+kc) x columns [n0, n0+cols) of the weight (row
// stride ldw) into ks.nr-wide panels (panel[p * nr + j], zero columns past
// `cols`), as ks.pack_b would pack the converted weight.
template <typename Run>
void pack_b(const gemm::KernelSet& ks, const Run& run, Layout layout, int64_t ldw, int k0, int kc, int n0, int cols,
            float* dst, float* stage) {
  const int nr = ks.nr;
  for (int j0 = 0; j0 < cols; j0 += nr, dst += (size_t)nr * kc) {
    const int w = std::min(nr, cols - j0);
    if (layout == Layout::NN) {
      for (int p = 0; p < kc; ++p) {
        float* d = dst + (size_t)p * nr;
        run((int64_t)(k0 + p) * ldw + n0 + j0, w, d);
        for (int j = w; j < nr; ++j) d[j] = 0.0f;
      }
    } else {
      for (int j = 0; j < w; ++j) run((int64_t)(n0 + j0 + j) * ldw + k0, kc, stage + (size_t)j * kc);
      ks.pack_b(stage, 1, kc, kc, w, dst);
    }
  }
}

// C[M, Nout] (beta) += alpha * A[M, Kred] . op(B) for at most kMbMax rows.
template <typename Run>
void fused_block(const gemm::KernelSet& ks, ThreadPool& pool, const Run& run, Layout layout, int64_t w_rows,
                 int64_t w_cols, int M, const float* A, int lda, float alpha, float beta, float* C, int ldc) {
  const int Nout = (int)(layout == Layout::NT ? w_rows : w_cols);
  const int Kred = (int)(layout == Layout::NT ? w_cols : w_rows);
  const BlockPlan plan = plan_block(ks, M, Nout, Kred, pool.size());
  const bool parallel = plan.threads > 1;
  const int kstep = plan.kstep;
  const int kblocks = ceil_div(Kred, kstep);
  // op(A) packed once: region u = k-block u, all rows.
  const size_t a_region = packed_a_region_floats(ks, M, kstep);
  float* pa_all = packed_a_workspace().get(a_region * kblocks);
  auto pack_a_unit = [&](size_t u) {
    const int k0 = (int)u * kstep;
    ks.pack_a(A + k0, lda, 1, M, std::min(kstep, Kred - k0), pa_all + a_region * u);
  };

  // Column blocks (plan_block).
  const int panels = ceil_div(Nout, ks.nr);
  const int ntiles = plan.ntiles, max_cols = plan.max_cols;
  const size_t b_floats = ((size_t)max_cols * kstep + gemm::kPackSlack + 15) / 16 * 16;

  auto task = [&](size_t t, int) {
    const int n0 = (int)((long long)t * panels / ntiles) * ks.nr;
    const int n1 = std::min(Nout, (int)((long long)(t + 1) * panels / ntiles) * ks.nr);
    const int cols = n1 - n0;
    float* pb = packed_b_workspace().get(packed_b_floats(ks, max_cols, kstep));
    float* stage = pb + b_floats;
    for (int kb = 0; kb < kblocks; ++kb) {
      const int k0 = kb * kstep, kc = std::min(kstep, Kred - k0);
      pack_b(ks, run, layout, w_cols, k0, kc, n0, cols, pb, stage);
      const float* pa = pa_all + a_region * kb;
      const bool accumulate = kb > 0 || beta != 0.0f;
      for (int j = 0; j < cols; j += ks.nr) {
        const float* bp = pb + (size_t)j * kc;
        const int w = std::min(ks.nr, cols - j);
        float* cj = C + n0 + j;
        if (ks.micro_narrow && 2 * w <= ks.nr) {
          for (int i = 0; i < M; i += 2 * ks.mr)
            ks.micro_narrow(kc, pa + (size_t)i * kc, bp, alpha, accumulate, cj + (size_t)i * ldc, ldc,
                            std::min(2 * ks.mr, M - i), w);
        } else {
          for (int i = 0; i < M; i += ks.mr)
            ks.micro(kc, pa + (size_t)i * kc, bp, alpha, accumulate, cj + (size_t)i * ldc, ldc,
                     std::min(ks.mr, M - i), w);
        }
      }
    }
  };
  if (parallel) {
    pool.run_tasks((size_t)kblocks, [&](size_t u, int) { pack_a_unit(u); });
    pool.run_tasks((size_t)ntiles, task);
  } else {
    for (int u = 0; u < kblocks; ++u) pack_a_unit(u);
    for (int t = 0; t < ntiles; ++t) task(t, 0);
  }
}

// fused_block over row blocks of at most kMbMax rows (whole micro-panels), so
// the packed op(A) of a call stays bounded as in the fp32 GEMM. Each output
// row's operations do not depend on the block it falls in.
template <typename Run>
void fused_gemm(const gemm::KernelSet& ks, ThreadPool& pool, const Run& run, Layout layout, int64_t w_rows,
                int64_t w_cols, int M, const float* A, int lda, float alpha, float beta, float* C, int ldc) {
  const int rows = block_rows(ks);
  for (int m0 = 0; m0 < M; m0 += rows)
    fused_block(ks, pool, run, layout, w_rows, w_cols, std::min(rows, M - m0), A + (size_t)m0 * lda, lda, alpha,
                beta, C + (size_t)m0 * ldc, ldc);
}

}  // namespace weightgemm
}  // namespace ps
