// Training throughput of the whole engine on a SmolLM2-135M-shaped model
// (hidden 576, 30 layers, 9 heads, 3 KV heads, intermediate 1536, vocab
// 49152, tied embeddings; random weights written once as a BF16 checkpoint,
// the dtype SmolLM2 is stored in, and loaded by every configuration: the
// fp32 rows widen it to fp32, the qlora rows quantize the block linears and
// keep the embedding / tied lm_head 16-bit as stored, as transformers does
// under load_in_4bit), one step = forward_backward + optimizer_step (AdamW),
// at sequence length 256 (one row at 1024):
//   lora_all_b1   LoRA r=16 on all seven linears, batch 1 x 256
//   lora_all_s1024  the same at batch 1 x 1024 (attention ~20% of the FLOPs)
//   lora_all_b4   the same, batch 4 x 256
//   lora_qv_b1    LoRA r=16 on q_proj and v_proj only, batch 1 x 256
//   lora_all_b1_ckpt   lora_all_b1 with gradient checkpointing
//   full_b1       full fine-tuning (every weight, fp32 AdamW), batch 1 x 256
//   qlora_all_b1  QLoRA: lora_all_b1 on a 4-bit NF4 base (blocksize 64, double
//                 quantization; the seven block linears in 4 bits, fused
//                 dequantize-GEMM forward and input gradient)
//   qlora_all_b4  the same, batch 4 x 256
//   qlora_all_b1_ckpt  qlora_all_b1 with gradient checkpointing (QLoRA's
//                 recipe: peft's prepare_model_for_kbit_training turns it on)
//   dora_all_b1   DoRA (PEFT use_dora): lora_all_b1 plus a trained magnitude
//                 per output row of every adapted linear (methods/dora.h)
//   qdora_all_b1  the same on qlora_all_b1's 4-bit base
//   lora_all_b1_drop  lora_all_b1 with LoRA dropout 0.1 (the other rows use 0)
//   dora_all_b1_drop  dora_all_b1 with LoRA dropout 0.1: DoRA then runs the
//                 frozen product on the dropped input too, as PEFT does
//   prompt20_b1   PEFT prompt tuning, 20 virtual tokens, batch 1 x 256 real tokens
//   prompt100_b1  the same with 100 virtual tokens
//   prefix20_b1   PEFT prefix tuning, 20 virtual tokens (the plain table)
//   prefix20_proj_b1  prefix tuning with prefix_projection (encoder_hidden_size 512)
// The qlora rows are compared with their lora_all rows (same batch, sequence,
// rank, targets, checkpointing), the prompt/prefix rows with lora_all_b1, the
// DoRA rows with their LoRA rows (dora/lora, qdora/qlora, the _drop pair):
// tokens/s (real tokens) and peak RSS ratios are printed.
// Each configuration runs in its own child process, so its peak RSS is its own.
//
// FLOPs counted per step (useful work, not the checkpointing recompute), with
// R = batch x seq rows and C = rows whose label counts (T - 1 per row):
//   linears    forward 2·R·Σ(in·out) over the 7 projections of 30 layers,
//              input-grad the same minus layer 0's q/k/v (the frozen
//              embeddings need no gradient, so the engine skips them),
//              weight-grad the same again for full fine-tuning only
//   lm_head    2·C·V·D forward + 2·C·V·D input-grad (+ 2·C·V·D weight-grad, full)
//   LoRA       per adapted linear 2·R·r·(in+out) forward + 4·R·r·(in+out)
//              backward (dB, dH, dA, dX; layer 0 q/k/v have no dX); dropout
//              adds no products (the mask is elementwise)
//   DoRA       on top of LoRA, per adapted linear (core/methods/dora.cpp):
//              backward recomputes W·xd for the magnitude's gradient,
//              2·R·in·out, plus s·H·Bᵀ, 2·R·r·out; with dropout the forward
//              adds W·xd beside W·x, 2·R·in·out, and backward the input
//              gradient of the (m/n - 1)·W·xd term, 2·R·in·out (not for
//              layer 0's q/k/v, which have no dX); once per optimizer step
//              the row norms ||W + s·B·A||: A·Wᵀ 2·r·in·out, A·Aᵀ 2·r²·in,
//              B·(A·Aᵀ) 2·out·r² (electron/training/step-flops.ts counts the
//              same: microBatchFlops + stepOverheadFlops)
//   attention  causal, per layer and sequence P = T(T+1)/2 query-key pairs:
//              QKᵀ and PV forward 4·hd·Hq·P, backward (dV, dP, dQ, dK) 8·hd·Hq·P
//   prompt     R counts the nvt virtual rows too (T + nvt per row), C the
//              real tokens (the last virtual one predicts the first), layer
//              0's q/k/v input-grad is needed (the prompt's gradient)
//   prefix     nvt more keys per query: P = T(T+1)/2 + T·nvt; the projection
//              MLP 6·nvt·(token_dim·enc + enc·L·2·token_dim)
// The reference is OpenBLAS sgemm (same thread count) on the model's dominant
// shape, the gate/up projection forward C[M,1536] = X[M,576]·W[1536,576]ᵀ with
// M = tokens per step; the ratio printed is engine GFLOP/s / sgemm GFLOP/s,
// both the fastest of their repeated runs (this machine may be shared).
//
// Usage: bench_train [out.json] [--threads=N] [--steps=N] [--config=NAME] [--configs=A,B,...] [--weights=FILE]
// (--weights: the checkpoint the parent wrote; a child run alone writes its own.)
// With PS_STEPS set in the environment every timed step's seconds go to
// stderr (to tell a slow machine, whose steps all slow down, from a stall).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "engine.h"
#include "memory_estimate.h"
#include "rng.h"
#include "bench_model.h"
#include "../tests/smollm2_135m.h"

#if defined(PS_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(__linux__)
#include <unistd.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  const char* name;
  ps::Method method;
  int batch, seq;
  bool qv_only;
  bool checkpoint;
  bool qlora = false;  // the base linears in 4-bit NF4
  int nvt = 0;         // prompt / prefix tuning: virtual tokens
  int enc = 0;         // prefix tuning: prefix_projection's encoder_hidden_size (0: none)
  bool dora = false;   // LoRA rows: DoRA (PEFT use_dora)
  float dropout = 0;   // LoRA rows: lora_dropout
};

const Config kConfigs[] = {
    {"lora_all_b1", ps::Method::Lora, 1, 256, false, false},
    {"lora_all_s1024", ps::Method::Lora, 1, 1024, false, false},
    {"lora_all_b4", ps::Method::Lora, 4, 256, false, false},
    {"lora_qv_b1", ps::Method::Lora, 1, 256, true, false},
    {"lora_all_b1_ckpt", ps::Method::Lora, 1, 256, false, true},
    {"full_b1", ps::Method::Full, 1, 256, false, false},
    {"qlora_all_b1", ps::Method::Lora, 1, 256, false, false, true},
    {"qlora_all_b4", ps::Method::Lora, 4, 256, false, false, true},
    {"qlora_all_b1_ckpt", ps::Method::Lora, 1, 256, false, true, true},
    {"dora_all_b1", ps::Method::Lora, 1, 256, false, false, false, 0, 0, true},
    {"qdora_all_b1", ps::Method::Lora, 1, 256, false, false, true, 0, 0, true},
    {"lora_all_b1_drop", ps::Method::Lora, 1, 256, false, false, false, 0, 0, false, 0.1f},
    {"dora_all_b1_drop", ps::Method::Lora, 1, 256, false, false, false, 0, 0, true, 0.1f},
    {"prompt20_b1", ps::Method::Prompt, 1, 256, false, false, false, 20},
    {"prompt100_b1", ps::Method::Prompt, 1, 256, false, false, false, 100},
    {"prefix20_b1", ps::Method::Prefix, 1, 256, false, false, false, 20},
    {"prefix20_proj_b1", ps::Method::Prefix, 1, 256, false, false, false, 20, 512},
};
constexpr int kRank = 16;

std::vector<std::string> targets_of(const Config& c) {
  return c.qv_only ? std::vector<std::string>{"q_proj", "v_proj"} : ps::lora_target_names();
}

double step_flops(const ps::ModelSpec& s, const Config& c) {
  const bool prompt = c.method == ps::Method::Prompt, prefix = c.method == ps::Method::Prefix;
  const double rows_per_seq = c.seq + (prompt ? c.nvt : 0);
  const double R = c.batch * rows_per_seq, C = static_cast<double>(c.batch) * (prompt ? c.seq : c.seq - 1);
  const double D = s.hidden_size, F = s.intermediate_size, hd = s.head_dim;
  const double Dq = s.num_heads * hd, Dkv = s.num_kv_heads * hd, V = s.vocab_size, L = s.num_layers;
  const double in[7] = {D, D, D, Dq, D, D, F}, out[7] = {Dq, Dkv, Dkv, D, F, F, D};
  double layer_params = 0;
  for (int m = 0; m < 7; ++m) layer_params += in[m] * out[m];
  const bool full = c.method == ps::Method::Full;
  double f = 2 * R * layer_params * L;                     // forward
  f += 2 * R * layer_params * L;                           // input grad
  if (!full && !prompt) f -= 2 * R * D * (Dq + 2 * Dkv);   // layer 0 q/k/v skip it
  if (full) f += 2 * R * layer_params * L;                 // weight grad
  f += (full ? 6 : 4) * C * V * D;                         // lm_head
  if (c.method == ps::Method::Lora) {
    const std::vector<std::string> t = targets_of(c);
    const auto& names = ps::lora_target_names();
    for (int m = 0; m < 7; ++m) {
      if (std::find(t.begin(), t.end(), names[m]) == t.end()) continue;
      f += 6 * R * kRank * (in[m] + out[m]) * L;
      if (m <= 2) f -= 2 * R * kRank * in[m];  // no dX in layer 0
      if (!c.dora) continue;
      f += (2 * R * in[m] * out[m] + 2 * R * kRank * out[m]) * L;  // backward: W·xd + s·H·Bᵀ for dm
      if (c.dropout > 0) {
        f += 2 * R * in[m] * out[m] * L;                    // forward: W·xd beside W·x
        f += 2 * R * in[m] * out[m] * (m <= 2 ? L - 1 : L);  // backward: (m/n - 1)·g through W to xd
      }
      // once per optimizer step (one micro-batch per step here): the norms
      f += (2.0 * kRank * in[m] * out[m] + 2.0 * kRank * kRank * in[m] + 2.0 * out[m] * kRank * kRank) * L;
    }
  }
  const double pairs = c.batch * (rows_per_seq * (rows_per_seq + 1.0) / 2 + (prefix ? c.seq * c.nvt : 0.0));
  f += 12 * hd * s.num_heads * pairs * L;
  if (prefix && c.enc) f += 6.0 * c.nvt * (Dkv * c.enc + c.enc * L * 2 * Dkv);
  return f;
}

using psbench::checkpoint_refs;   // bench_model.h: the BF16 checkpoint layout
using psbench::write_checkpoint;  // and its serial random values

struct Result {
  std::string name;
  int tokens_per_step = 0;
  double step_s = 0, best_step_s = 0, tokens_per_s = 0, gflops = 0, best_gflops = 0, first_loss = 0, last_loss = 0;
  uint64_t estimate_total = 0, estimate_activations = 0, peak_rss = 0, weight_bytes = 0,
           trainable_bytes = 0, activation_bytes = 0;
  int64_t trainable_params = 0;
};

std::string to_json(const Result& r) {
  std::ostringstream o;
  o << "{\"config\": \"" << r.name << "\", \"tokens_per_step\": " << r.tokens_per_step
    << ", \"step_seconds\": " << r.step_s << ", \"best_step_seconds\": " << r.best_step_s
    << ", \"tokens_per_second\": " << r.tokens_per_s << ", \"gflops\": " << r.gflops
    << ", \"best_gflops\": " << r.best_gflops << ", \"first_loss\": " << r.first_loss << ", \"last_loss\": " << r.last_loss
    << ", \"trainable_params\": " << r.trainable_params << ", \"estimate_total_bytes\": " << r.estimate_total
    << ", \"estimate_activation_bytes\": " << r.estimate_activations << ", \"peak_rss_bytes\": " << r.peak_rss
    << ", \"weight_bytes\": " << r.weight_bytes << ", \"trainable_bytes\": " << r.trainable_bytes
    << ", \"activation_bytes\": " << r.activation_bytes << "}";
  return o.str();
}

Result run_config(const Config& c, int threads, int steps, const std::string& weights) {
  const ps::ModelSpec s = pstest::smollm2_135m();
  ps::EngineOptions eo;
  eo.threads = threads;
  eo.gradient_checkpointing = c.checkpoint;
  eo.seed = 1;
  if (c.qlora) eo.quantization.type = ps::QuantizationOptions::Type::Nf4;  // blocksize 64, double quantization
  ps::Engine e(s, eo);
  e.load_weights(checkpoint_refs(s, weights));
  ps::MemoryEstimateOptions mo;
  mo.method = c.method;
  mo.batch_size = c.batch;
  mo.seq_len = c.seq;
  mo.gradient_checkpointing = c.checkpoint;
  mo.lora.rank = kRank;
  mo.lora.targets = targets_of(c);
  mo.lora.dropout = c.dropout;
  mo.lora.dora = c.dora;
  mo.quantization = eo.quantization;
  mo.weight_dtype = ps::DType::BF16;
  mo.prompt.num_virtual_tokens = c.nvt;
  mo.prefix.num_virtual_tokens = c.nvt;
  mo.prefix.encoder_hidden_size = c.enc;
  mo.threads = threads;
  if (c.method == ps::Method::Prompt) {
    // PEFT's RANDOM init draws from the vocabulary's scale; any values serve a timing run.
    ps::PromptTuningOptions po;
    po.num_virtual_tokens = c.nvt;
    ps::Rng irng(5);
    po.init.resize(static_cast<size_t>(c.nvt) * s.hidden_size);
    for (auto& x : po.init) x = static_cast<float>(irng.uniform(-0.0346, 0.0346));
    e.setup_prompt_tuning(po);
  } else if (c.method == ps::Method::Prefix) {
    ps::PrefixTuningOptions po;
    po.num_virtual_tokens = c.nvt;
    po.projection = c.enc > 0;
    po.encoder_hidden_size = c.enc;
    po.seed = 3;
    e.setup_prefix_tuning(po);
  } else if (c.method == ps::Method::Lora) {
    ps::LoraOptions lo;
    lo.rank = kRank;
    lo.alpha = 32.0f;
    lo.targets = targets_of(c);
    lo.seed = 3;
    lo.dropout = c.dropout;
    lo.dora = c.dora;
    e.setup_lora(lo);
  } else {
    e.setup_full();
  }
  const ps::MemoryEstimate est = ps::estimate_memory(s, mo);

  ps::Batch b;
  b.batch_size = c.batch;
  b.seq_len = c.seq;
  ps::Rng rng(7);
  for (int i = 0; i < c.batch * c.seq; ++i) {
    const int id = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(s.vocab_size));
    b.input_ids.push_back(id);
    b.labels.push_back(id);
    b.segments.push_back(0);
    b.positions.push_back(i % c.seq);
  }
  ps::OptimizerStep opt;
  opt.lr = c.method == ps::Method::Full ? 1e-5f : c.nvt ? 3e-3f : 1e-4f;
  opt.max_grad_norm = 1.0f;
  const float scale = 1.0f / (c.batch * (c.method == ps::Method::Prompt ? c.seq : c.seq - 1));

  Result r;
  r.name = c.name;
  r.tokens_per_step = c.batch * c.seq;
  // Warm-up: allocates the arena and AdamW state, faults the pages in.
  r.first_loss = e.forward_backward(b, scale).loss_sum * scale;
  e.optimizer_step(opt);
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    r.last_loss = e.forward_backward(b, scale).loss_sum * scale;
    e.optimizer_step(opt);
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    if (std::getenv("PS_STEPS")) std::fprintf(stderr, "step %.3f\n", times.back());
  }
  std::sort(times.begin(), times.end());
  r.step_s = times[times.size() / 2];
  r.best_step_s = times.front();
  r.tokens_per_s = r.tokens_per_step / r.step_s;
  r.gflops = step_flops(s, c) / r.step_s * 1e-9;
  r.best_gflops = step_flops(s, c) / r.best_step_s * 1e-9;
  const ps::MemoryUsage u = e.memory();
  // what inspect and the memory check say: the tensors and the CPU threads' scratch
  r.estimate_total = est.total_bytes + ps::estimate_device_memory(s, mo, "cpu", "fp32").total();
  r.estimate_activations = est.activation_bytes;
  r.peak_rss = ps::peak_rss_bytes();
  r.weight_bytes = u.weight_bytes;
  r.trainable_bytes = u.trainable_bytes;
  r.activation_bytes = u.activation_bytes;
  r.trainable_params = est.trainable_params;
  return r;
}

// sgemm GFLOP/s of C[M,N] = A[M,K]·B[N,K]^T, best of repeated runs (on a shared
// machine the fastest run is the least disturbed one; the steps are compared the same way).
template <typename F>
double gemm_gflops(int M, int N, int K, F&& gemm) {
  gemm();
  std::vector<double> t;
  const auto start = Clock::now();
  while (t.size() < 5 || (std::chrono::duration<double>(Clock::now() - start).count() < 1.0 && t.size() < 200)) {
    const auto t0 = Clock::now();
    gemm();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return 2.0 * M * N * K / t.front() * 1e-9;
}

double mib(uint64_t b) { return b / 1048576.0; }

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  const char* only = nullptr;
  std::string subset;  // --configs=a,b,c: run only these (parent)
  std::string weights;
  int threads = 0, steps = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--steps=", 8) == 0) {
      steps = std::max(1, std::atoi(argv[i] + 8));
    } else if (std::strncmp(argv[i], "--weights=", 10) == 0) {
      weights = argv[i] + 10;
    } else if (std::strncmp(argv[i], "--configs=", 10) == 0) {
      subset = "," + std::string(argv[i] + 10) + ",";
    } else if (std::strncmp(argv[i], "--config=", 9) == 0) {
      only = argv[i] + 9;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: %s [out.json] [--threads=N] [--steps=N] [--config=NAME] [--configs=A,B] [--weights=FILE]\n", argv[0]);
      return 2;
    } else {
      json_path = argv[i];
    }
  }
  if (threads <= 0) threads = ps::hardware_threads();

  if (only) {  // child: one configuration, its result as one JSON line
    for (const auto& c : kConfigs) {
      if (std::strcmp(c.name, only) != 0) continue;
      try {
        const bool own = weights.empty();
        if (own) {
          weights = (std::filesystem::temp_directory_path() /
                     ("ps_bench_train_" + std::to_string(Clock::now().time_since_epoch().count()) + ".bf16"))
                        .string();
          write_checkpoint(pstest::smollm2_135m(), weights);
        }
        const Result r = run_config(c, threads, steps, weights);
        if (own) std::remove(weights.c_str());
        std::ofstream(json_path ? json_path : "/dev/stdout") << to_json(r) << "\n";
        return 0;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", c.name, e.what());
        return 1;
      }
    }
    std::fprintf(stderr, "unknown config %s\n", only);
    return 2;
  }

  ps::CpuBackend be(threads);
  std::printf("engine: %s\n", be.describe().c_str());
  // The reference: the dominant GEMM shape at 256 and 1024 tokens.
  const int shapes[2] = {256, 1024};
  double ours_gemm[2] = {0, 0}, blas_gemm[2] = {0, 0};
  std::string blas_core = "none";
#if defined(PS_HAVE_OPENBLAS)
  blas_core = openblas_get_corename();
#if defined(__linux__)
  // An OpenBLAS release that does not know this CPU falls back to pre-AVX
  // kernels, which would flatter us: give it the best kernels the CPU runs
  // (SkylakeX with AVX-512, else Haswell's AVX2), so the reference is strong.
  static const char* kOld[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom"};
  bool old = false;
  for (const char* o : kOld) old = old || blas_core == o;
  if (old && !std::getenv("OPENBLAS_CORETYPE") && be.use_avx2()) {
    __builtin_cpu_init();
    const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell";
    std::printf("OpenBLAS chose '%s' kernels on an AVX2 CPU; re-running with OPENBLAS_CORETYPE=%s.\n",
                blas_core.c_str(), core);
    std::fflush(stdout);
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
    std::perror("execv");
  }
#endif
  openblas_set_num_threads(threads);
#endif
  for (int k = 0; k < 2; ++k) {
    const int M = shapes[k], N = 1536, K = 576;
    std::vector<float> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(N) * K), Cm(static_cast<size_t>(M) * N);
    ps::Rng rng(k);
    for (auto& x : A) x = static_cast<float>(rng.uniform(-1, 1));
    for (auto& x : B) x = static_cast<float>(rng.uniform(-1, 1));
    ours_gemm[k] = gemm_gflops(M, N, K, [&] { be.gemm_nt(M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, Cm.data(), N); });
#if defined(PS_HAVE_OPENBLAS)
    blas_gemm[k] = gemm_gflops(M, N, K, [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, Cm.data(), N);
    });
#endif
  }
  std::printf("gemm_nt %dx1536x576: engine %.1f GFLOP/s, OpenBLAS (%s) %.1f GFLOP/s\n", shapes[0], ours_gemm[0],
              blas_core.c_str(), blas_gemm[0]);
  std::printf("gemm_nt %dx1536x576: engine %.1f GFLOP/s, OpenBLAS (%s) %.1f GFLOP/s\n", shapes[1], ours_gemm[1],
              blas_core.c_str(), blas_gemm[1]);
  std::printf("threads %d, %d timed steps per config, seq 256 (unless named), LoRA r=%d\n\n", threads, steps, kRank);
  std::printf("%-17s %7s %9s %9s %9s %8s %8s %11s %11s %10s\n", "config", "tok/s", "step ms", "GFLOP/s", "best GF/s",
              "vs BLAS", "loss", "estimate", "peak RSS", "trainable");

  const std::string ckpt = (std::filesystem::temp_directory_path() /
                            ("ps_bench_train_" + std::to_string(Clock::now().time_since_epoch().count()) + ".bf16"))
                               .string();
  write_checkpoint(pstest::smollm2_135m(), ckpt);
  std::vector<Result> results;
  std::map<std::string, std::pair<double, double>> by_name;  // tokens/s, peak RSS
  std::map<std::string, double> best_tps;                    // tokens/s of the fastest step
  std::string json = "{\"threads\": " + std::to_string(threads) + ", \"engine\": \"" + be.describe() +
                     "\", \"openblas_core\": \"" + blas_core + "\", \"sgemm_gflops\": {\"256\": " +
                     std::to_string(blas_gemm[0]) + ", \"1024\": " + std::to_string(blas_gemm[1]) +
                     "}, \"engine_gemm_gflops\": {\"256\": " + std::to_string(ours_gemm[0]) + ", \"1024\": " +
                     std::to_string(ours_gemm[1]) + "}, \"configs\": [";
  bool first = true;
  for (const auto& c : kConfigs) {
    if (!subset.empty() && subset.find("," + std::string(c.name) + ",") == std::string::npos) continue;
    const std::string tmp = (std::filesystem::temp_directory_path() /
                             ("ps_bench_train_" + std::to_string(Clock::now().time_since_epoch().count()) + "_" +
                              c.name + ".json"))
                                .string();
    const std::string cmd = std::string("\"") + argv[0] + "\" \"" + tmp + "\" --threads=" + std::to_string(threads) +
                            " --steps=" + std::to_string(steps) + " --config=" + c.name + " --weights=\"" + ckpt + "\"";
    if (std::system(cmd.c_str()) != 0) {
      std::printf("%-17s failed\n", c.name);
      continue;
    }
    std::ifstream in(tmp);
    std::string line;
    std::getline(in, line);
    std::remove(tmp.c_str());
    // The child wrote the numbers; parse the few this table shows.
    auto num = [&](const char* key) {
      const auto at = line.find(std::string("\"") + key + "\": ");
      return at == std::string::npos ? 0.0 : std::atof(line.c_str() + at + std::strlen(key) + 4);
    };
    const double blas = blas_gemm[c.batch * c.seq >= 1024 ? 1 : 0];
    std::printf("%-17s %7.0f %9.1f %9.1f %9.1f %8.2f %8.4f %8.0f MiB %7.0f MiB %10.0f\n", c.name,
                num("tokens_per_second"), num("step_seconds") * 1e3, num("gflops"), num("best_gflops"),
                blas > 0 ? num("best_gflops") / blas : 0.0, num("last_loss"),
                mib(static_cast<uint64_t>(num("estimate_total_bytes"))),
                mib(static_cast<uint64_t>(num("peak_rss_bytes"))), num("trainable_params"));
    json += (first ? "" : ", ") + line;
    first = false;
    by_name[c.name] = {num("tokens_per_second"), num("peak_rss_bytes")};
    if (num("best_step_seconds") > 0) best_tps[c.name] = num("tokens_per_step") / num("best_step_seconds");
  }
  json += "]}\n";
  std::remove(ckpt.c_str());
  // QLoRA against LoRA on the fp32 base, same batch and sequence.
  for (const char* b : {"b1", "b4", "b1_ckpt"}) {
    const auto q = by_name.find(std::string("qlora_all_") + b), l = by_name.find(std::string("lora_all_") + b);
    if (q == by_name.end() || l == by_name.end() || l->second.first <= 0 || l->second.second <= 0) continue;
    std::printf("qlora_all_%s vs lora_all_%s: tokens/s x%.2f, peak RSS x%.3f (%.0f MiB vs %.0f MiB)\n", b, b,
                q->second.first / l->second.first, q->second.second / l->second.second, mib(q->second.second),
                mib(l->second.second));
  }
  // DoRA against LoRA, same base, batch, sequence and dropout.
  for (const auto& [d, l] : {std::pair<const char*, const char*>{"dora_all_b1", "lora_all_b1"},
                             {"qdora_all_b1", "qlora_all_b1"},
                             {"dora_all_b1_drop", "lora_all_b1_drop"}}) {
    const auto q = by_name.find(d), p = by_name.find(l);
    if (q == by_name.end() || p == by_name.end() || p->second.first <= 0 || p->second.second <= 0) continue;
    std::printf("%s vs %s: tokens/s x%.2f (fastest steps x%.2f), peak RSS x%.3f (%.0f MiB vs %.0f MiB)\n", d, l,
                q->second.first / p->second.first, best_tps[d] / best_tps[l], q->second.second / p->second.second,
                mib(q->second.second), mib(p->second.second));
  }
  // Prompt / prefix tuning against LoRA r=16 on all linears (batch 1 x 256 real tokens each).
  const auto lora = by_name.find("lora_all_b1");
  for (const char* name : {"prompt20_b1", "prompt100_b1", "prefix20_b1", "prefix20_proj_b1"}) {
    const auto q = by_name.find(name);
    if (q == by_name.end() || lora == by_name.end() || lora->second.first <= 0 || lora->second.second <= 0) continue;
    std::printf("%s vs lora_all_b1: tokens/s x%.2f (fastest steps x%.2f), peak RSS x%.3f (%.0f MiB vs %.0f MiB)\n",
                name, q->second.first / lora->second.first, best_tps[name] / best_tps["lora_all_b1"],
                q->second.second / lora->second.second, mib(q->second.second), mib(lora->second.second));
  }
  std::printf("\ntok/s, step ms, GFLOP/s: median step; best GF/s: fastest step. vs BLAS: best whole-step GFLOP/s\n"
              "over the best OpenBLAS sgemm GFLOP/s on the 1536x576 projection at the same tokens per step.\nestimate: estimate_memory total (weights, grads, optimizer, activations) plus the CPU threads' scratch (estimate_device_memory);\n"
              "peak RSS adds the program, thread stacks, RoPE tables and the checkpoint pages mapped in use\n"
              "(the 16-bit embedding of the qlora rows is one: it is in their estimate too).\n");
  if (json_path) std::ofstream(json_path) << json;
  return 0;
}
