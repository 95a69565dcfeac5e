// 16-bit frozen base weights (backend.h half_gemm_*): what keeping a BF16
// checkpoint's linears in 16 bits costs or saves on the CPU.
//   (1) GEMV (M == 1, generation): half_gemm_nt on the bf16 weight against
//       gemm_nt on the same values widened to fp32, Llama shapes; the bits
//       are checked equal. The GEMV is memory-bound: half the bytes.
//   (2) GEMM (M = 256, training's forward and input gradient): the packing
//       widens tiles; the cost should be close to nothing.
//   (3) generation with the engine: a SmolLM2-135M-shaped model with a
//       LoRA r=16 adapter on all seven linears, decoding one token at a time,
//       from the BF16 checkpoint (linears held 16-bit) and from the F32 file
//       of the same values (every linear fp32: what a BF16 checkpoint cost
//       before): ms per token (median) and the weight bytes.
// Usage: bench_half [--threads=N] [--skip-decode] [--decode-only]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../tests/smollm2_135m.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/half_kernels.h"
#include "bench_model.h"
#include "engine.h"
#include "model/half.h"
#include "rng.h"

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

void bench_gemms(int threads) {
  ps::CpuBackend be(threads);
  std::printf("%s\n\n", be.describe().c_str());
  struct Case {
    const char* what;
    int N, K;
  };
  const Case cases[] = {
      {"smollm2 gate/up  1536x576", 1536, 576}, {"smollm2 down     576x1536", 576, 1536},
      {"llama-1b q/o    2048x2048", 2048, 2048}, {"llama-1b up     8192x2048", 8192, 2048},
      {"llama-1b down   2048x8192", 2048, 8192}};
  std::printf("%-27s %5s %11s %11s %7s %10s\n", "weight [N x K]", "M", "fp32 us", "bf16 us", "speedup", "bf16 GB/s");
  for (const Case& c : cases) {
    ps::Rng rng(3);
    const size_t n = static_cast<size_t>(c.N) * c.K;
    std::vector<uint16_t> w16(n);
    std::vector<float> w32(n);
    for (size_t i = 0; i < n; ++i) {
      w16[i] = psbench::bf16_bits(static_cast<float>(rng.uniform(-0.03, 0.03)));
      w32[i] = ps::bf16_to_f32(w16[i]);
    }
    const ps::HalfWeight W{w16.data(), true, c.N, c.K};
    for (int M : {1, 256}) {
      std::vector<float> x(static_cast<size_t>(M) * c.K), y1(static_cast<size_t>(M) * c.N), y2(y1.size());
      for (auto& v : x) v = static_cast<float>(rng.normal());
      const int reps = M == 1 ? 200 : 5;
      const double t32 = best_seconds(reps, [&] { be.gemm_nt(M, c.N, c.K, 1.0f, x.data(), c.K, w32.data(), c.K, 0.0f, y1.data(), c.N); });
      const double t16 = best_seconds(reps, [&] { be.half_gemm_nt(M, x.data(), c.K, W, 1.0f, 0.0f, y2.data(), c.N); });
      if (std::memcmp(y1.data(), y2.data(), y1.size() * 4) != 0) std::printf("  (MISMATCH: not the fp32 bits)\n");
      std::printf("%-27s %5d %11.1f %11.1f %6.2fx %10.1f\n", c.what, M, t32 * 1e6, t16 * 1e6, t32 / t16,
                  M == 1 ? 2.0 * n / t16 * 1e-9 : 0.0);
    }
  }
}

// The fused GEMV's ISAs on one thread, on weights that stay in L2 (where
// the widening's instruction count shows) and one that does not.
void bench_gemv_isas() {
  ps::ThreadPool pool(1);
  const ps::gemm::KernelSet& ks = *ps::gemm::usable_kernel_sets().back();  // the fastest set's dot_rows
  std::printf("\nM == 1 GEMV by widening ISA (one thread, bf16, kernel set %s; portable: widen a few rows, then dot_rows):\n",
              ks.name);
  for (const auto& nk : {std::pair<int, int>{192, 576}, {576, 576}, {4096, 2048}}) {
    const int N = nk.first, K = nk.second;
    ps::Rng rng(4);
    std::vector<uint16_t> w16(static_cast<size_t>(N) * K);
    for (auto& h : w16) h = psbench::bf16_bits(static_cast<float>(rng.uniform(-0.03, 0.03)));
    std::vector<float> x(K, 0.5f), y(N);
    const ps::HalfWeight W{w16.data(), true, N, K};
    std::vector<float> w32(w16.size());
    for (size_t i = 0; i < w16.size(); ++i) w32[i] = ps::bf16_to_f32(w16[i]);
    const double t32 = best_seconds(N * K > (1 << 22) ? 30 : 2000, [&] {
      ps::gemm::gemm(ks, pool, ps::gemm::Layout::NT, 1, N, K, 1.0f, x.data(), K, w32.data(), K, 0.0f, y.data(), N);
    });
    std::printf("  %5d x %-5d  fp32 %8.2f us", N, K, t32 * 1e6);
    for (ps::halfk::Isa isa : ps::halfk::usable_isas()) {
      const double t = best_seconds(N * K > (1 << 22) ? 30 : 2000, [&] {
        ps::halfk::half_gemm_nt(ks, pool, isa, 1, x.data(), K, W, 1.0f, 0.0f, y.data(), N);
      });
      std::printf("  %s %8.2f us", ps::halfk::isa_name(isa), t * 1e6);
    }
    std::printf("\n");
  }
}

void bench_decode(int threads) {
  const ps::ModelSpec s = pstest::smollm2_135m();
  const std::string dir = (std::filesystem::temp_directory_path() / "ps_bench_half").string();
  std::filesystem::create_directories(dir);
  const std::string bf16_path = dir + "/bf16.bin", f32_path = dir + "/f32.bin";
  psbench::write_checkpoint(s, bf16_path);
  const std::vector<ps::WeightRef> refs16 = psbench::checkpoint_refs(s, bf16_path);
  std::vector<ps::WeightRef> refs32 = refs16;
  {  // the same values as F32
    std::ifstream in(bf16_path, std::ios::binary);
    std::ofstream out(f32_path, std::ios::binary);
    uint64_t at = 0;
    for (auto& r : refs32) {
      const size_t n = psbench::numel(r.shape);
      std::vector<uint16_t> h(n);
      in.seekg(static_cast<std::streamoff>(r.offset));
      in.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(n * 2));
      std::vector<float> f(n);
      for (size_t i = 0; i < n; ++i) f[i] = ps::bf16_to_f32(h[i]);
      r.file = f32_path;
      r.offset = at;
      r.dtype = ps::DType::F32;
      out.write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(n * 4));
      at += n * 4;
    }
  }
  for (bool lora : {false, true}) {
  std::printf("\ngeneration, SmolLM2-135M shape, %s, %d threads:\n",
              lora ? "LoRA r=16 on all linears" : "the base model", threads);
  std::vector<float> first;
  for (int pass = 0; pass < 2; ++pass) {
    const bool sixteen = pass == 0;
    ps::EngineOptions eo;
    eo.threads = threads;
    ps::Engine e(s, eo);
    e.load_weights(sixteen ? refs16 : refs32);
    ps::LoraOptions lo;
    lo.rank = 16;
    lo.alpha = 32.0f;
    lo.targets = ps::lora_target_names();
    lo.seed = 3;
    if (lora) e.setup_lora(lo);
    e.reset_cache(200);
    const int32_t prompt[8] = {1, 17, 300, 4000, 25, 9, 811, 5};
    std::vector<float> logits = e.decode(prompt, 8);
    std::vector<double> times;
    int32_t tok = 42;
    for (int i = 0; i < 96; ++i) {
      const auto t0 = Clock::now();
      logits = e.decode(&tok, 1);
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    std::sort(times.begin(), times.end());
    const ps::MemoryUsage u = e.memory();
    std::printf("  %-28s %7.2f ms/token (median; best %.2f)  weights %.1f MiB\n",
                sixteen ? "BF16 file, linears 16-bit" : "F32 file (the fp32 path)", times[times.size() / 2] * 1e3,
                times.front() * 1e3, u.weight_bytes / 1048576.0);
    if (sixteen)
      first = logits;
    else if (first.size() != logits.size() || std::memcmp(first.data(), logits.data(), 4 * first.size()) != 0)
      std::printf("  (MISMATCH: the last logits differ)\n");
    else
      std::printf("  last logits bit-identical\n");
  }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  bool decode = true, gemms = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
    else if (std::strcmp(argv[i], "--skip-decode") == 0) decode = false;
    else if (std::strcmp(argv[i], "--decode-only") == 0) gemms = false;
  }
  if (gemms) {
    bench_gemms(threads);
    bench_gemv_isas();
  }
  if (decode) bench_decode(threads);
  return 0;
}
