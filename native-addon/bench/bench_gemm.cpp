// GEMM throughput of the CPU backend against OpenBLAS on the products of
// training a SmolLM2-135M-shaped model (hidden 576, intermediate 1536, kv dim
// 192, vocab 49152) at 256 and 512 tokens per step:
//   nt  forward        Y[T,out]  = X[T,in] · W[out,in]^T
//   nn  input grad     dX[T,in]  = dY[T,out] · W[out,in]
//   tn  weight grad    dW[out,in] = dY[T,out]^T · X[T,in]
// plus the M = 1 GEMV of generation (compared with cblas_sgemv).
//
// Usage: bench_gemm [out.json] [--threads=N] [--quick]
// Both libraries run with the same thread count (default 2). The median of
// several timed runs (after a warm-up) is reported.
//
// OpenBLAS picks its kernels from the CPU model; a release that does not know
// the CPU falls back to pre-AVX kernels ("Prescott"), which would make any
// comparison meaningless. In that case the benchmark re-runs itself with
// OPENBLAS_CORETYPE=Haswell (the AVX2 kernels, the same ISA as ours). Set
// OPENBLAS_CORETYPE yourself to compare with another kernel set.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_backend.h"

#if defined(PS_HAVE_OPENBLAS)
#include <cblas.h>
#if defined(__linux__)
#include <unistd.h>
#endif
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  std::string name;
  int tokens;
  std::string layout;  // "nt", "nn", "tn", "gemv"
  int M, N, K;
  double ours = 0, blas = 0;  // GFLOP/s
  double max_rel_diff = 0;    // ours vs OpenBLAS, relative to max |C|
};

// Median seconds of fn over enough runs to be stable: one warm-up, then at
// least `min_runs` runs and at least `min_seconds` in total.
double median_seconds(const std::function<void()>& fn, int min_runs, double min_seconds) {
  fn();
  std::vector<double> t;
  const auto start = Clock::now();
  while ((int)t.size() < min_runs ||
         (std::chrono::duration<double>(Clock::now() - start).count() < min_seconds &&
          t.size() < 200)) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

double geomean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += std::log(x);
  return std::exp(s / v.size());
}

#if defined(PS_HAVE_OPENBLAS)
bool openblas_core_is_pre_avx2(const std::string& core) {
  static const char* old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                              "Katmai", "Coppermine", "Northwood", "Banias"};
  for (const char* o : old)
    if (core == o) return true;
  return false;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  int threads = 2;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: %s [out.json] [--threads=N] [--quick]\n", argv[0]);
      return 2;
    } else {
      json_path = argv[i];
    }
  }
  if (threads < 1) threads = 1;

  ps::CpuBackend be(threads);
  std::string blas_core = "none";
#if defined(PS_HAVE_OPENBLAS)
  blas_core = openblas_get_corename();
#if defined(__linux__)
  if (openblas_core_is_pre_avx2(blas_core) && !std::getenv("OPENBLAS_CORETYPE") && be.use_avx2()) {
    std::printf("OpenBLAS chose the '%s' kernels on this AVX2 CPU (CPU model unknown to it);\n"
                "re-running with OPENBLAS_CORETYPE=Haswell so both sides use AVX2.\n",
                blas_core.c_str());
    std::fflush(stdout);
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    execv("/proc/self/exe", argv);
    std::perror("execv");  // fall through and measure with the detected core
  }
#endif
  openblas_set_num_threads(threads);
#endif
  std::printf("ours: %s\nOpenBLAS core: %s, threads %d\n\n", be.describe().c_str(),
              blas_core.c_str(), threads);

  struct Layer {
    const char* name;
    int out, in;
  };
  const Layer layers[] = {{"q/o_proj", 576, 576},
                          {"k/v_proj", 192, 576},
                          {"gate/up_proj", 1536, 576},
                          {"down_proj", 576, 1536},
                          {"lm_head", 49152, 576}};
  std::vector<Case> cases;
  for (int T : {256, 512}) {
    if (quick && T == 512) continue;
    for (const Layer& l : layers) {
      cases.push_back({l.name, T, "nt", T, l.out, l.in});
      cases.push_back({l.name, T, "nn", T, l.in, l.out});
      cases.push_back({l.name, T, "tn", l.out, l.in, T});
    }
  }
  for (const Layer& l : layers) cases.push_back({l.name, 1, "gemv", 1, l.out, l.in});

  const int min_runs = quick ? 3 : 7;
  const double min_seconds = quick ? 0.1 : 0.4;
  std::mt19937 rng(42);
  std::printf("%-13s %5s %-4s %6s %6s %6s %10s %10s %7s\n", "layer", "tok", "op", "M", "N", "K",
              "ours GF/s", "BLAS GF/s", "ratio");
  for (Case& c : cases) {
    const int M = c.M, N = c.N, K = c.K;
    // Operand shapes per layout (all dense, ld = row length).
    const bool gemv = c.layout == "gemv";
    const bool a_trans = c.layout == "tn", b_trans = c.layout == "nt" || gemv;
    const int lda = a_trans ? M : K, ldb = b_trans ? K : N;
    const std::vector<float> A = random_vec((size_t)M * K, rng), B = random_vec((size_t)K * N, rng);
    std::vector<float> C((size_t)M * N), Cb((size_t)M * N);
    auto ours = [&] {
      if (c.layout == "nn")
        be.gemm_nn(M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), N);
      else if (c.layout == "tn")
        be.gemm_tn(M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), N);
      else
        be.gemm_nt(M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), N);
    };
    const double flops = 2.0 * M * N * K;
    c.ours = flops / median_seconds(ours, min_runs, min_seconds) / 1e9;
#if defined(PS_HAVE_OPENBLAS)
    auto blas = [&] {
      if (gemv) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, B.data(), ldb, A.data(), 1, 0.0f,
                    Cb.data(), 1);
      } else {
        cblas_sgemm(CblasRowMajor, a_trans ? CblasTrans : CblasNoTrans,
                    b_trans ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A.data(), lda, B.data(),
                    ldb, 0.0f, Cb.data(), N);
      }
    };
    c.blas = flops / median_seconds(blas, min_runs, min_seconds) / 1e9;
    double cmax = 0, dmax = 0;
    for (size_t i = 0; i < C.size(); ++i) {
      cmax = std::max(cmax, (double)std::fabs(Cb[i]));
      dmax = std::max(dmax, (double)std::fabs(C[i] - Cb[i]));
    }
    c.max_rel_diff = cmax > 0 ? dmax / cmax : dmax;
    // OpenBLAS workers spin for a while after a call; let them go to sleep
    // before our pool runs again.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
#endif
    if (c.blas > 0)
      std::printf("%-13s %5d %-4s %6d %6d %6d %10.1f %10.1f %7.2f\n", c.name.c_str(), c.tokens,
                  c.layout.c_str(), M, N, K, c.ours, c.blas, c.ours / c.blas);
    else
      std::printf("%-13s %5d %-4s %6d %6d %6d %10.1f %10s %7s\n", c.name.c_str(), c.tokens,
                  c.layout.c_str(), M, N, K, c.ours, "-", "-");
    std::fflush(stdout);
  }

  const char* layouts[] = {"nt", "nn", "tn", "gemv"};
  std::printf("\ngeometric-mean ratio ours/OpenBLAS:");
  std::vector<double> summary;
  for (const char* l : layouts) {
    std::vector<double> r;
    for (const Case& c : cases)
      if (c.layout == l && c.blas > 0) r.push_back(c.ours / c.blas);
    summary.push_back(geomean(r));
    std::printf("  %s %.2f", l, summary.back());
  }
  std::printf("\n");

  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path);
      return 1;
    }
    std::fprintf(f, "{\n  \"ours\": \"%s\",\n  \"openblas_core\": \"%s\",\n  \"threads\": %d,\n",
                 be.describe().c_str(), blas_core.c_str(), threads);
    std::fprintf(f, "  \"cases\": [\n");
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      std::fprintf(f,
                   "    {\"layer\": \"%s\", \"tokens\": %d, \"layout\": \"%s\", \"M\": %d, \"N\": %d, "
                   "\"K\": %d, \"ours_gflops\": %.2f, ",
                   c.name.c_str(), c.tokens, c.layout.c_str(), c.M, c.N, c.K, c.ours);
      if (c.blas > 0)
        std::fprintf(f, "\"openblas_gflops\": %.2f, \"ratio\": %.3f, \"max_rel_diff\": %.2e}",
                     c.blas, c.ours / c.blas, c.max_rel_diff);
      else
        std::fprintf(f, "\"openblas_gflops\": null, \"ratio\": null}");
      std::fprintf(f, "%s\n", i + 1 < cases.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"geomean_ratio\": {");
    for (size_t i = 0; i < summary.size(); ++i) {
      if (summary[i] > 0)
        std::fprintf(f, "%s\"%s\": %.3f", i ? ", " : "", layouts[i], summary[i]);
      else
        std::fprintf(f, "%s\"%s\": null", i ? ", " : "", layouts[i]);
    }
    std::fprintf(f, "}\n}\n");
    std::fclose(f);
    std::printf("wrote %s\n", json_path);
  }
  return 0;
}
