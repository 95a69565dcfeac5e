// 16-bit frozen base weights (backend.h half_gemm_nt / half_gemm_nn,
// WeightStore keeping BF16 / F16 tensors as stored):
//  - the 16-bit GEMMs equal the fp32 GEMM of the same backend on the widened
//    weight BIT FOR BIT (bf16 and f16 with subnormals; odd shapes, tails,
//    several k-blocks, column blocks and row blocks, M == 1 GEMVs, N == 1 / K == 1,
//    padded strides, beta 0 / 1, alpha != 1; 1..3 threads; every fp32
//    kernel set this CPU runs (portable, AVX2, AVX-512) with every widening
//    ISA (portable; AVX2 / F16C; AVX-512 GEMV)), and both stay within the fp32
//    rounding bound of a float64 reference (so neither is wrong alike);
//  - an engine trained with LoRA (dropout on), prompt tuning and prefix
//    tuning from a BF16 / F16 safetensors file gives the bits of the same run
//    from the F32 file of the same values: losses, gradients, updated
//    tensors, evaluation, generation logits; with a misaligned 16-bit tensor
//    (an owned copy) among the mapped ones; and holds the block linears, the
//    embedding and the lm_head (untied: Llama; tied: Qwen2, where the
//    embedding is the head) at 2 bytes a value (the estimate agrees to the byte);
//  - full fine-tuning from a BF16 file trains fp32 master copies (the F32
//    file's bits, loss going down, every weight at 4 bytes).
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <functional>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/half_kernels.h"
#include "check.h"
#include "error.h"
#include "model/half.h"
#include "model/weights.h"
#include "tiny_model.h"

using namespace tiny;
namespace fs = std::filesystem;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

uint16_t to_bf16(float f) {  // truncation: any 16-bit pattern is a valid weight here
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}

// fp32 -> IEEE half by truncation, subnormals kept (|x| < 65504 here).
uint16_t to_f16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = static_cast<int>((b >> 23) & 0xFFu) - 127 + 15;
  const uint32_t mant = b & 0x7FFFFFu;
  if (exp >= 1) return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13));
  if (exp < -10) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | ((mant | 0x800000u) >> (14 - exp)));  // subnormal
}

float widen(uint16_t h, bool bf16) { return bf16 ? ps::bf16_to_f32(h) : ps::f16_to_f32(h); }

// ---- the GEMMs ---------------------------------------------------------------

struct Shape {
  int M, N, K;  // the forward product: Y[M,N] = X[M,K] W[N,K]^T
};

// The fp32 GEMMs and their 16-bit forms, of one backend or one kernel set.
struct Ops {
  std::function<void(int, int, int, float, const float*, int, const float*, int, float, float*, int)> gemm_nt, gemm_nn;
  std::function<void(int, const float*, int, const ps::HalfWeight&, float, float, float*, int)> half_nt, half_nn;
};

Ops backend_ops(ps::CpuBackend& be) {
  Ops o;
  o.gemm_nt = [&be](int M, int N, int K, float a, const float* A, int lda, const float* B, int ldb, float b, float* C,
                    int ldc) { be.gemm_nt(M, N, K, a, A, lda, B, ldb, b, C, ldc); };
  o.gemm_nn = [&be](int M, int N, int K, float a, const float* A, int lda, const float* B, int ldb, float b, float* C,
                    int ldc) { be.gemm_nn(M, N, K, a, A, lda, B, ldb, b, C, ldc); };
  o.half_nt = [&be](int M, const float* X, int ldx, const ps::HalfWeight& W, float a, float b, float* Y, int ldy) {
    be.half_gemm_nt(M, X, ldx, W, a, b, Y, ldy);
  };
  o.half_nn = [&be](int M, const float* X, int ldx, const ps::HalfWeight& W, float a, float b, float* Y, int ldy) {
    be.half_gemm_nn(M, X, ldx, W, a, b, Y, ldy);
  };
  return o;
}

Ops kernel_set_ops(const ps::gemm::KernelSet& ks, ps::ThreadPool& pool, ps::halfk::Isa isa) {
  using ps::gemm::Layout;
  Ops o;
  o.gemm_nt = [&ks, &pool](int M, int N, int K, float a, const float* A, int lda, const float* B, int ldb, float b,
                           float* C, int ldc) { ps::gemm::gemm(ks, pool, Layout::NT, M, N, K, a, A, lda, B, ldb, b, C, ldc); };
  o.gemm_nn = [&ks, &pool](int M, int N, int K, float a, const float* A, int lda, const float* B, int ldb, float b,
                           float* C, int ldc) { ps::gemm::gemm(ks, pool, Layout::NN, M, N, K, a, A, lda, B, ldb, b, C, ldc); };
  o.half_nt = [&ks, &pool, isa](int M, const float* X, int ldx, const ps::HalfWeight& W, float a, float b, float* Y,
                                int ldy) { ps::halfk::half_gemm_nt(ks, pool, isa, M, X, ldx, W, a, b, Y, ldy); };
  o.half_nn = [&ks, &pool, isa](int M, const float* X, int ldx, const ps::HalfWeight& W, float a, float b, float* Y,
                                int ldy) { ps::halfk::half_gemm_nn(ks, pool, isa, M, X, ldx, W, a, b, Y, ldy); };
  return o;
}

void check_gemms(const Ops& be, const Shape& sh, bool bf16, float alpha, float beta, uint64_t seed,
                 const std::string& what) {
  ps::Rng rng(seed);
  const int M = sh.M, N = sh.N, K = sh.K;
  std::vector<uint16_t> w16(static_cast<size_t>(N) * K);
  std::vector<float> wf(w16.size());
  for (size_t i = 0; i < w16.size(); ++i) {
    // Mostly N(0, 0.3^2); every 7th value tiny, so IEEE half holds subnormals.
    const float v = static_cast<float>(rng.normal() * (i % 7 == 3 ? 3e-6 : 0.3));
    w16[i] = bf16 ? to_bf16(v) : to_f16(v);
    wf[i] = widen(w16[i], bf16);
  }
  ps::HalfWeight W;
  W.data = w16.data();
  W.bf16 = bf16;
  W.rows = N;
  W.cols = K;

  // nt: Y[M,N] = alpha X[M,K] W^T + beta Y, padded strides.
  const int ldx = K + 3, ldy = N + 2;
  std::vector<float> X(static_cast<size_t>(M) * ldx), Y0(static_cast<size_t>(M) * ldy);
  for (auto& x : X) x = static_cast<float>(rng.normal());
  for (auto& y : Y0) y = static_cast<float>(rng.normal());
  std::vector<float> want = Y0, got = Y0;
  be.gemm_nt(M, N, K, alpha, X.data(), ldx, wf.data(), K, beta, want.data(), ldy);
  be.half_nt(M, X.data(), ldx, W, alpha, beta, got.data(), ldy);
  if (!same_bits(want, got)) pstest::fail(__FILE__, __LINE__, what + " nt: not the fp32 GEMM's bits");
  double worst = 0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double ref = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        ref += static_cast<double>(X[i * ldx + k]) * wf[static_cast<size_t>(j) * K + k];
        mag += std::fabs(static_cast<double>(X[i * ldx + k]) * wf[static_cast<size_t>(j) * K + k]);
      }
      ref = alpha * ref + beta * Y0[i * ldy + j];
      const double bound = 2.0 * (K + 4) * 6e-8 * (std::fabs(alpha) * mag + std::fabs(Y0[i * ldy + j])) + 1e-30;
      worst = std::max(worst, std::fabs(got[i * ldy + j] - ref) / bound);
    }
  if (worst > 1.0) pstest::fail(__FILE__, __LINE__, what + " nt: off the float64 reference (" + std::to_string(worst) + ")");
  // The padding between rows is never written.
  for (int i = 0; i < M; ++i)
    for (int j = N; j < ldy; ++j) CHECK(std::memcmp(&got[i * ldy + j], &Y0[i * ldy + j], 4) == 0);

  // nn: dX[M,K] = alpha dY[M,N] W + beta dX.
  const int lddy = N + 1, lddx = K + 5;
  std::vector<float> dY(static_cast<size_t>(M) * lddy), dX0(static_cast<size_t>(M) * lddx);
  for (auto& v : dY) v = static_cast<float>(rng.normal());
  for (auto& v : dX0) v = static_cast<float>(rng.normal());
  std::vector<float> want_dx = dX0, got_dx = dX0;
  be.gemm_nn(M, K, N, alpha, dY.data(), lddy, wf.data(), K, beta, want_dx.data(), lddx);
  be.half_nn(M, dY.data(), lddy, W, alpha, beta, got_dx.data(), lddx);
  if (!same_bits(want_dx, got_dx)) pstest::fail(__FILE__, __LINE__, what + " nn: not the fp32 GEMM's bits");
  worst = 0;
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k) {
      double ref = 0, mag = 0;
      for (int j = 0; j < N; ++j) {
        ref += static_cast<double>(dY[i * lddy + j]) * wf[static_cast<size_t>(j) * K + k];
        mag += std::fabs(static_cast<double>(dY[i * lddy + j]) * wf[static_cast<size_t>(j) * K + k]);
      }
      ref = alpha * ref + beta * dX0[i * lddx + k];
      const double bound = 2.0 * (N + 4) * 6e-8 * (std::fabs(alpha) * mag + std::fabs(dX0[i * lddx + k])) + 1e-30;
      worst = std::max(worst, std::fabs(got_dx[i * lddx + k] - ref) / bound);
    }
  if (worst > 1.0) pstest::fail(__FILE__, __LINE__, what + " nn: off the float64 reference (" + std::to_string(worst) + ")");
}

void test_gemms() {
  const Shape shapes[] = {
      {1, 37, 29},     // generation GEMV, tails everywhere
      {1, 64, 128},    // GEMV, whole vectors
      {1, 1300, 700},  // GEMV large enough to split over the threads
      {7, 33, 19},     // narrow tails
      {13, 70, 45},
      {64, 96, 130},
      {200, 600, 530},  // several k-blocks and column blocks, threaded
      {601, 40, 70},    // more rows than one row block (528)
      {3, 1, 17},       // N == 1
      {5, 9, 1},        // K == 1
      {1, 1, 40},
  };
  int runs = 0;
  for (bool portable : {true, false}) {
    for (int threads = 1; threads <= 3; ++threads) {
      ps::CpuBackend be(threads, portable);
      if (!portable && !be.use_avx2()) continue;  // this CPU has no AVX2: the portable run covered it
      const Ops ops = backend_ops(be);
      for (const Shape& sh : shapes)
        for (bool bf16 : {true, false})
          for (float beta : {0.0f, 1.0f}) {
            const float alpha = beta == 0.0f ? 1.0f : 0.75f;
            const std::string what = std::string(portable ? "portable" : "simd") + " t" + std::to_string(threads) +
                                     (bf16 ? " bf16 " : " f16 ") + std::to_string(sh.M) + "x" + std::to_string(sh.N) +
                                     "x" + std::to_string(sh.K) + " beta " + std::to_string(int(beta));
            check_gemms(ops, sh, bf16, alpha, beta, 1000 + runs, what);
            ++runs;
          }
    }
  }
  // Every fp32 kernel set this CPU can run (the backend picks one: AVX-512
  // where present, so its AVX2 6x16 set is reached only this way), with
  // every widening ISA (portable, AVX2, AVX-512: the fused GEMVs), on two threads.
  ps::ThreadPool pool(2);
  std::string sets, isas;
  for (ps::halfk::Isa isa : ps::halfk::usable_isas()) isas += std::string(" ") + ps::halfk::isa_name(isa);
  for (const ps::gemm::KernelSet* ks : ps::gemm::usable_kernel_sets()) {
    sets += std::string(" ") + ks->name;
    for (ps::halfk::Isa isa : ps::halfk::usable_isas()) {
      const Ops ops = kernel_set_ops(*ks, pool, isa);
      for (const Shape& sh : shapes)
        for (bool bf16 : {true, false}) {
          const std::string what = std::string("set ") + ks->name + " widen " + ps::halfk::isa_name(isa) +
                                   (bf16 ? " bf16 " : " f16 ") + std::to_string(sh.M) + "x" + std::to_string(sh.N) +
                                   "x" + std::to_string(sh.K);
          check_gemms(ops, sh, bf16, 0.75f, 1.0f, 5000 + runs, what);
          ++runs;
        }
    }
  }
  std::printf("16-bit GEMMs: %d cases bit-identical to the fp32 GEMM (kernel sets:%s; widening:%s)\n", runs,
              sets.c_str(), isas.c_str());

  // alpha == 0 and empty shapes do what the fp32 GEMM does; bad arguments are errors naming the op.
  ps::CpuBackend be(2);
  std::vector<uint16_t> w(12, 0x3F80);  // bf16 1.0
  ps::HalfWeight W{w.data(), true, 3, 4};
  std::vector<float> x(8, 1.0f), y(6, 5.0f);
  be.half_gemm_nt(2, x.data(), 4, W, 0.0f, 0.0f, y.data(), 3);
  CHECK(y == std::vector<float>(6, 0.0f));
  be.half_gemm_nt(2, x.data(), 4, W, 1.0f, 1.0f, y.data(), 3);
  CHECK(y == std::vector<float>(6, 4.0f));
  bool threw = false;
  try {
    be.half_gemm_nn(2, x.data(), 2, W, 1.0f, 0.0f, y.data(), 4);  // dY stride 2 < 3 rows of W
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("half_gemm_nn") != std::string::npos;
  }
  CHECK(threw);
  threw = false;
  try {
    be.half_gemm_nt(2, x.data(), 4, W, 1.0f, 0.5f, y.data(), 3);
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("beta must be 0 or 1") != std::string::npos;
  }
  CHECK(threw);
}

// ---- the engine ----------------------------------------------------------------

struct File {
  std::string path;
  std::vector<uint8_t> bytes;
  uint64_t put(const void* p, size_t n, bool misalign = false) {
    while (bytes.size() % 8) bytes.push_back(0);
    if (misalign) bytes.push_back(0);  // an odd offset: a 16-bit tensor the store must copy
    const uint64_t at = bytes.size();
    bytes.insert(bytes.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    return at;
  }
  void write() {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
};

const char* const kMisaligned = "model.layers.1.mlp.down_proj.weight";

// Rounds w to `dt` (what a 16-bit file holds) and writes it: refs into the file.
std::vector<ps::WeightRef> write_checkpoint(const ps::ModelSpec& s, Weights& w, ps::DType dt, const fs::path& file) {
  File f{file.string(), std::vector<uint8_t>(8, 0)};
  std::vector<ps::WeightRef> refs;
  for (const auto& info : ps::expected_weights(s)) {
    auto& val = w[info.name];
    ps::WeightRef r;
    r.name = info.name;
    r.file = f.path;
    r.shape = info.shape;
    r.dtype = dt;
    const bool misalign = info.name == kMisaligned;
    if (dt == ps::DType::F32) {
      r.offset = f.put(val.data(), val.size() * 4, false);
    } else {
      std::vector<uint16_t> h(val.size());
      for (size_t i = 0; i < val.size(); ++i) h[i] = dt == ps::DType::BF16 ? to_bf16(val[i]) : to_f16(val[i]);
      r.offset = f.put(h.data(), h.size() * 2, misalign);
    }
    refs.push_back(r);
  }
  f.write();
  return refs;
}

// The values a 16-bit file of w holds, as fp32.
Weights rounded(const Weights& w, ps::DType dt) {
  Weights out = w;
  for (auto& kv : out)
    for (auto& v : kv.second) v = dt == ps::DType::BF16 ? ps::bf16_to_f32(to_bf16(v)) : ps::f16_to_f32(to_f16(v));
  return out;
}

enum class Method { Lora, Prompt, Prefix, Full };
const char* method_name(Method m) {
  return m == Method::Lora ? "lora" : m == Method::Prompt ? "prompt" : m == Method::Prefix ? "prefix" : "full";
}

void setup(ps::Engine& e, const ps::ModelSpec& s, Method m) {
  switch (m) {
    case Method::Lora:
      e.setup_lora(all_targets_lora(2, 4.0f, 0.1f, 5));
      randomize_lora_b(e, 0.2, 6);
      break;
    case Method::Prompt: {
      ps::PromptTuningOptions o;
      o.num_virtual_tokens = 3;
      ps::Rng rng(8);
      o.init.resize(static_cast<size_t>(3) * s.hidden_size);
      for (auto& v : o.init) v = static_cast<float>(0.5 * rng.normal());
      e.setup_prompt_tuning(o);
      break;
    }
    case Method::Prefix: {
      ps::PrefixTuningOptions o;
      o.num_virtual_tokens = 2;
      o.projection = true;
      o.encoder_hidden_size = 8;
      o.seed = 9;
      e.setup_prefix_tuning(o);
      break;
    }
    case Method::Full: e.setup_full(); break;
  }
}

// Everything a run produces, in order.
struct Outcome {
  std::vector<double> numbers;
  std::vector<std::vector<float>> arrays;
};

Outcome train(ps::Engine& e, Method m) {
  Outcome o;
  const int V = e.spec().vocab_size;
  const ps::Batch b1 = random_batch(2, 9, V, 53), b2 = random_batch(3, 7, V, 54);
  ps::OptimizerStep step;
  step.lr = 2e-2f;
  step.weight_decay = 0.01f;
  for (int s = 0; s < 2; ++s) {
    const ps::LossResult r = e.forward_backward(s == 0 ? b1 : b2, 0.1f);
    o.numbers.push_back(r.loss_sum);
    for (const auto& p : e.parameters())
      if (p.trainable) o.arrays.push_back(e.get_gradient(p.name));
    o.numbers.push_back(e.optimizer_step(step));
  }
  o.numbers.push_back(e.evaluate(b1).loss_sum);
  for (const auto& p : e.parameters())
    if (p.trainable) o.arrays.push_back(e.get_tensor(p.name));
  if (m != Method::Full) {  // generation: chunked prefill, then single tokens (the M == 1 GEMVs)
    e.reset_cache(12);
    const int32_t prompt[4] = {3, V - 1, 7, 11};
    o.arrays.push_back(e.decode(prompt, 4));
    for (int32_t t : {5, 0, 9}) o.arrays.push_back(e.decode(&t, 1));
  }
  return o;
}

ps::EngineOptions engine_options() {
  ps::EngineOptions o;
  o.threads = 2;
  o.seed = 77;
  return o;
}

// numel * 2 for the tensors a plain store keeps 16-bit (the block linears,
// the embedding and an untied lm_head), numel * 4 for the rest.
uint64_t expected_weight_bytes(const ps::ModelSpec& s, bool sixteen) {
  uint64_t b = 0;
  for (const auto& info : ps::expected_weights(s)) {  // a tied model has no lm_head tensor
    uint64_t n = 1;
    for (auto d : info.shape) n *= static_cast<uint64_t>(d);
    const bool linear = info.name.rfind("model.layers.", 0) == 0 && info.name.find("_proj.weight") != std::string::npos;
    const bool table = info.name == "model.embed_tokens.weight" || info.name == "lm_head.weight";
    b += n * (sixteen && (linear || table) ? 2 : 4);
  }
  return b;
}

void test_engine(Variant v, ps::DType dt, Method m, const fs::path& dir) {
  const ps::ModelSpec s = spec(v);
  const std::string what = std::string(variant_name(v)) + " " + (dt == ps::DType::BF16 ? "bf16" : "f16") + " " +
                           method_name(m);
  const Weights w = rounded(random_weights(s, 31), dt);  // values both files hold exactly
  Weights w16 = w, w32 = w;
  const auto refs16 = write_checkpoint(s, w16, dt, dir / "half.safetensors");
  const auto refs32 = write_checkpoint(s, w32, ps::DType::F32, dir / "f32.safetensors");
  ps::Engine e16(s, engine_options()), e32(s, engine_options());
  e16.load_weights(refs16);
  e32.load_weights(refs32);

  // Before training: the base tensors read back as the file's values; the
  // frozen linears, the embedding and the lm_head (the embedding when tied)
  // at 2 bytes a value.
  CHECK(e16.get_tensor(kMisaligned) == w.at(kMisaligned));
  CHECK(e16.get_tensor("model.layers.0.self_attn.q_proj.weight") == w.at("model.layers.0.self_attn.q_proj.weight"));
  CHECK(e16.get_tensor("model.embed_tokens.weight") == w.at("model.embed_tokens.weight"));
  if (!s.tie_word_embeddings) CHECK(e16.get_tensor("lm_head.weight") == w.at("lm_head.weight"));
  CHECK(e16.memory().weight_bytes == expected_weight_bytes(s, true));
  CHECK(e32.memory().weight_bytes == expected_weight_bytes(s, false));

  setup(e16, s, m);
  setup(e32, s, m);
  const Outcome a = train(e16, m), b = train(e32, m);
  CHECK(a.numbers.size() == b.numbers.size() && a.arrays.size() == b.arrays.size());
  for (size_t i = 0; i < a.numbers.size() && i < b.numbers.size(); ++i)
    if (std::memcmp(&a.numbers[i], &b.numbers[i], sizeof(double)) != 0)
      pstest::fail(__FILE__, __LINE__, what + ": number " + std::to_string(i) + " differs: " +
                                           std::to_string(a.numbers[i]) + " vs " + std::to_string(b.numbers[i]));
  for (size_t i = 0; i < a.arrays.size() && i < b.arrays.size(); ++i)
    if (!same_bits(a.arrays[i], b.arrays[i])) pstest::fail(__FILE__, __LINE__, what + ": array " + std::to_string(i) + " differs");
  CHECK(a.numbers[0] > 0 && a.arrays.size() > 2);

  const ps::MemoryUsage u16 = e16.memory(), u32 = e32.memory();
  if (m == Method::Full) {
    // fp32 master copies of everything, from either file; training moved the loss down.
    CHECK(u16.weight_bytes == expected_weight_bytes(s, false));
    CHECK(a.numbers[4] < a.numbers[0]);
  } else {
    const uint64_t adapter = u32.weight_bytes - expected_weight_bytes(s, false);
    CHECK(u16.weight_bytes == expected_weight_bytes(s, true) + adapter);
    CHECK(u16.weight_bytes < u32.weight_bytes);
    CHECK(u16.activation_bytes == u32.activation_bytes);  // the 16-bit head's GEMMs widen nothing into the arena
  }
  // The estimate is the engine's allocation to the byte.
  ps::MemoryEstimateOptions o;
  o.method = m == Method::Lora ? ps::Method::Lora : m == Method::Prompt ? ps::Method::Prompt
                                               : m == Method::Prefix ? ps::Method::Prefix
                                                                     : ps::Method::Full;
  o.batch_size = 3;
  o.seq_len = 9;
  o.lora.rank = 2;
  o.lora.targets = ps::lora_target_names();
  o.lora.dropout = 0.1f;
  o.prompt.num_virtual_tokens = 3;
  o.prefix.num_virtual_tokens = 2;
  o.prefix.encoder_hidden_size = 8;
  o.weight_dtype = dt;
  const ps::MemoryEstimate est = ps::estimate_memory(s, o);
  CHECK(est.weight_bytes == u16.weight_bytes);
  o.weight_dtype = ps::DType::F32;
  CHECK(ps::estimate_memory(s, o).weight_bytes == u32.weight_bytes);
  std::printf("%s: %zu numbers, %zu arrays bit-identical to the F32 file; weights %llu vs %llu bytes\n",
              what.c_str(), a.numbers.size(), a.arrays.size(), (unsigned long long)u16.weight_bytes,
              (unsigned long long)u32.weight_bytes);
}

}  // namespace

int main() {
  const fs::path dir = fs::temp_directory_path() /
                       ("ps_half_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  try {
    test_gemms();
    for (ps::DType dt : {ps::DType::BF16, ps::DType::F16})
      for (Variant v : {Variant::Llama, Variant::Qwen2})
        for (Method m : {Method::Lora, Method::Prompt, Method::Prefix, Method::Full}) test_engine(v, dt, m, dir);
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  fs::remove_all(dir);
  return pstest::finish("test_half_weights");
}
