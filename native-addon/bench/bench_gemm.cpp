// GEMM throughput of the CPU backend against OpenBLAS on the products of
// training a SmolLM2-135M-shaped model (hidden 576, intermediate 1536, kv dim
// 192, vocab 49152) at 256 and 512 tokens per step:
//   nt  forward        Y[T,out]  = X[T,in] · W[out,in]^T
//   nn  input grad     dX[T,in]  = dY[T,out] · W[out,in]
//   tn  weight grad    dW[out,in] = dY[T,out]^T · X[T,in]
// plus the M = 1 GEMV of generation (compared with cblas_sgemv): per shape,
// where a loop re-reads one weight that the caches may hold, and as one
// decoded token walks them ("generation walk": every projection of the 30
// layers, then the tied lm_head, 538 MB of fp32 weights in a row, so they
// stream from DRAM as in real generation).
//
// Usage: bench_gemm [out.json] [--threads=N] [--kernels=portable|avx2|avx512] [--quick] [--walk-only]
// Both libraries run with the same thread count (default 2). Each case is
// timed in alternating rounds (ours, then OpenBLAS, a few runs each after a
// warm-up) and the median of all runs is reported, so slow drifts of the
// machine's speed hit both sides alike. --kernels picks one of our kernel
// sets (default: the one CpuBackend uses on this CPU).
//
// OpenBLAS picks its kernels from the CPU model; a release that does not know
// the CPU falls back to pre-AVX kernels ("Prescott"), which would make any
// comparison meaningless. In that case the benchmark re-runs itself with
// OPENBLAS_CORETYPE set to the best OpenBLAS kernels for the CPU's ISA
// (SkylakeX with AVX-512, else Haswell). Set OPENBLAS_CORETYPE yourself to
// compare with another kernel set.
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
#include "backend/cpu/gemm_kernels.h"

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

// Median seconds per run of `ours` and `theirs`, timed in alternating rounds
// (after one warm-up run of each): a round runs each side for at least
// `min_seconds / rounds` and at least 3 times; there are `rounds` rounds.
// `pause` runs after each round of `theirs` (OpenBLAS workers spin for a
// while after a call; they must be asleep again before our pool runs).
struct Timing {
  double ours, theirs;
};
Timing alternate_medians(const std::function<void()>& ours, const std::function<void()>* theirs,
                         int rounds, double min_seconds, const std::function<void()>& pause) {
  std::vector<double> t_ours, t_theirs;
  const double slice = min_seconds / rounds;
  auto round = [slice](const std::function<void()>& fn, std::vector<double>& t) {
    double total = 0;
    for (int i = 0; i < 3 || (total < slice && i < 1000); ++i) {
      const auto t0 = Clock::now();
      fn();
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      t.push_back(s);
      total += s;
    }
  };
  ours();
  if (theirs) (*theirs)(), pause();
  for (int r = 0; r < rounds; ++r) {
    round(ours, t_ours);
    if (theirs) {
      round(*theirs, t_theirs);
      pause();
    }
  }
  auto median = [](std::vector<double> t) {
    if (t.empty()) return 0.0;
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  return {median(t_ours), median(t_theirs)};
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

// One decoded token's GEMVs in order: 30 layers of q, k, v, o, gate, up, down
// (SmolLM2-135M shape), then the tied lm_head. Ours (gemm_nt with M = 1, the
// path generation's linears take) against cblas_sgemv on the same weights,
// one walk each per round, alternating; best and median walk in ms.
struct Walk {
  double bytes = 0;
  double ours_best = 0, ours_median = 0, blas_best = 0, blas_median = 0;  // ms; blas 0: not linked
};

Walk generation_walk(const ps::gemm::KernelSet& ks, ps::ThreadPool& pool, int rounds,
                     const std::function<void()>& pause) {
  struct Gemv {
    int out, in;
    std::vector<float> w;
  };
  std::vector<Gemv> walk;
  auto add = [&](int out, int in) {
    Gemv g{out, in, std::vector<float>((size_t)out * in)};
    uint32_t h = (uint32_t)walk.size() * 2654435761u + 1;
    for (float& v : g.w) {  // cheap values in [-0.5, 0.5): 135M of them
      h = h * 1664525u + 1013904223u;
      v = (float)(h >> 8) * (1.0f / 16777216.0f) - 0.5f;
    }
    walk.push_back(std::move(g));
  };
  for (int l = 0; l < 30; ++l) {
    add(576, 576), add(192, 576), add(192, 576), add(576, 576);
    add(1536, 576), add(1536, 576), add(576, 1536);
  }
  add(49152, 576);
  Walk r;
  for (const Gemv& g : walk) r.bytes += 4.0 * g.w.size();
  std::vector<float> x(1536, 0.25f), y(49152);
  std::function<void()> ours = [&] {
    for (const Gemv& g : walk)
      ps::gemm::gemm(ks, pool, ps::gemm::Layout::NT, 1, g.out, g.in, 1.0f, x.data(), g.in, g.w.data(),
                     g.in, 0.0f, y.data(), g.out);
  };
  std::vector<double> t_ours, t_blas;
  auto timed = [](const std::function<void()>& fn, std::vector<double>& t) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() * 1e3);
  };
#if defined(PS_HAVE_OPENBLAS)
  std::function<void()> blas = [&] {
    for (const Gemv& g : walk)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, g.out, g.in, 1.0f, g.w.data(), g.in, x.data(), 1, 0.0f,
                  y.data(), 1);
  };
#endif
  for (int i = 0; i <= rounds; ++i) {  // round 0 warms up (page faults, pool start)
    timed(ours, t_ours);
#if defined(PS_HAVE_OPENBLAS)
    timed(blas, t_blas);
    pause();
#endif
  }
  auto best_median = [](std::vector<double> t, double* best, double* median) {
    if (t.size() < 2) return;
    t.erase(t.begin());
    std::sort(t.begin(), t.end());
    *best = t.front();
    *median = t[t.size() / 2];
  };
  best_median(t_ours, &r.ours_best, &r.ours_median);
  best_median(t_blas, &r.blas_best, &r.blas_median);
  return r;
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
  const char* kernels = nullptr;
  int threads = 2;
  bool quick = false, walk_only = false;  // walk_only: the generation walk alone, no JSON
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--kernels=", 10) == 0) {
      kernels = argv[i] + 10;
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--walk-only") == 0) {
      walk_only = true;
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr,
                   "usage: %s [out.json] [--threads=N] [--kernels=portable|avx2|avx512] [--quick] "
                   "[--walk-only]\n",
                   argv[0]);
      return 2;
    } else {
      json_path = argv[i];
    }
  }
  if (threads < 1) threads = 1;

  ps::CpuBackend be(threads);
  const ps::gemm::KernelSet* ks = &ps::gemm::kernels_for(be);
  if (kernels) {
    ks = nullptr;
    for (const ps::gemm::KernelSet* k : ps::gemm::usable_kernel_sets())
      if (std::strcmp(k->name, kernels) == 0) ks = k;
    if (!ks) {
      std::fprintf(stderr, "kernel set '%s' is not available on this CPU/build; have:", kernels);
      for (const ps::gemm::KernelSet* k : ps::gemm::usable_kernel_sets())
        std::fprintf(stderr, " %s", k->name);
      std::fprintf(stderr, "\n");
      return 2;
    }
  }
  std::string blas_core = "none";
#if defined(PS_HAVE_OPENBLAS)
  blas_core = openblas_get_corename();
#if defined(__linux__)
  if (openblas_core_is_pre_avx2(blas_core) && !std::getenv("OPENBLAS_CORETYPE") && be.use_avx2()) {
    bool avx512 = false;
    for (const ps::gemm::KernelSet* k : ps::gemm::usable_kernel_sets())
      avx512 = avx512 || std::strcmp(k->name, "avx512") == 0;
    const char* core = avx512 ? "SkylakeX" : "Haswell";
    std::printf("OpenBLAS chose its '%s' kernels on this %s CPU (a CPU model it does not know);\n"
                "re-running with OPENBLAS_CORETYPE=%s.\n",
                blas_core.c_str(), avx512 ? "AVX-512" : "AVX2", core);
    std::fflush(stdout);
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
    std::perror("execv");  // fall through and measure with the detected core
  }
#endif
  openblas_set_num_threads(threads);
#endif
  std::printf("ours: %s kernels, %d threads\n", ks->name, threads);
  if (blas_core == "none")
    std::printf("OpenBLAS: not linked (built without PS_HAVE_OPENBLAS)\n\n");
  else
    std::printf("OpenBLAS: %s kernels, %d threads\n\n", blas_core.c_str(), threads);

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
  if (walk_only) json_path = nullptr;
  for (int T : {256, 512}) {
    if (walk_only) break;
    if (quick && T == 512) continue;
    for (const Layer& l : layers) {
      cases.push_back({l.name, T, "nt", T, l.out, l.in});
      cases.push_back({l.name, T, "nn", T, l.in, l.out});
      cases.push_back({l.name, T, "tn", l.out, l.in, T});
    }
  }
  if (!walk_only)
    for (const Layer& l : layers) cases.push_back({l.name, 1, "gemv", 1, l.out, l.in});

  const int rounds = quick ? 2 : 5;
  const double min_seconds = quick ? 0.1 : 0.5;
  std::mt19937 rng(42);
  if (!walk_only)
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
    const ps::gemm::Layout layout = c.layout == "nn"   ? ps::gemm::Layout::NN
                                    : c.layout == "tn" ? ps::gemm::Layout::TN
                                                       : ps::gemm::Layout::NT;
    std::function<void()> ours = [&] {
      ps::gemm::gemm(*ks, be.pool(), layout, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                     C.data(), N);
    };
    const double flops = 2.0 * M * N * K;
    const std::function<void()>* theirs = nullptr;
    std::function<void()> pause = [] {};
#if defined(PS_HAVE_OPENBLAS)
    std::function<void()> blas = [&] {
      if (gemv) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, B.data(), ldb, A.data(), 1, 0.0f,
                    Cb.data(), 1);
      } else {
        cblas_sgemm(CblasRowMajor, a_trans ? CblasTrans : CblasNoTrans,
                    b_trans ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A.data(), lda, B.data(),
                    ldb, 0.0f, Cb.data(), N);
      }
    };
    theirs = &blas;
    if (threads > 1) pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(250)); };
#endif
    const Timing t = alternate_medians(ours, theirs, rounds, min_seconds, pause);
    c.ours = flops / t.ours / 1e9;
    if (theirs) {
      c.blas = flops / t.theirs / 1e9;
      double cmax = 0, dmax = 0;
      for (size_t i = 0; i < C.size(); ++i) {
        cmax = std::max(cmax, (double)std::fabs(Cb[i]));
        dmax = std::max(dmax, (double)std::fabs(C[i] - Cb[i]));
      }
      c.max_rel_diff = cmax > 0 ? dmax / cmax : dmax;
    }
    if (c.blas > 0)
      std::printf("%-13s %5d %-4s %6d %6d %6d %10.1f %10.1f %7.2f\n", c.name.c_str(), c.tokens,
                  c.layout.c_str(), M, N, K, c.ours, c.blas, c.ours / c.blas);
    else
      std::printf("%-13s %5d %-4s %6d %6d %6d %10.1f %10s %7s\n", c.name.c_str(), c.tokens,
                  c.layout.c_str(), M, N, K, c.ours, "-", "-");
    std::fflush(stdout);
  }

  std::function<void()> walk_pause = [] {};
#if defined(PS_HAVE_OPENBLAS)
  if (threads > 1) walk_pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(250)); };
#endif
  const Walk walk = generation_walk(*ks, be.pool(), quick ? 3 : 10, walk_pause);
  std::printf("\ngeneration walk, 30 layers x 7 projections + lm_head (%.0f MB fp32), ms per token:\n",
              walk.bytes / 1e6);
  std::printf("  ours %.2f best (%.1f GB/s), %.2f median", walk.ours_best, walk.bytes / walk.ours_best / 1e6,
              walk.ours_median);
  if (walk.blas_best > 0)
    std::printf("; OpenBLAS %.2f best (%.1f GB/s), %.2f median; ratio (best) %.2f", walk.blas_best,
                walk.bytes / walk.blas_best / 1e6, walk.blas_median, walk.blas_best / walk.ours_best);
  std::printf("\n");

  const char* layouts[] = {"nt", "nn", "tn", "gemv"};
  std::vector<double> summary;
  for (const char* l : layouts) {
    std::vector<double> r;
    for (const Case& c : cases)
      if (c.layout == l && c.blas > 0) r.push_back(c.ours / c.blas);
    summary.push_back(geomean(r));
  }
  if (summary[0] > 0 && !walk_only) {
    std::printf("\ngeometric-mean ratio ours/OpenBLAS:");
    for (size_t i = 0; i < summary.size(); ++i) std::printf("  %s %.2f", layouts[i], summary[i]);
    std::printf("\n");
  }

  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path);
      return 1;
    }
    std::fprintf(f, "{\n  \"ours_kernels\": \"%s\",\n  \"openblas_core\": \"%s\",\n", ks->name,
                 blas_core.c_str());
    std::fprintf(f, "  \"threads\": %d,\n", threads);
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
    std::fprintf(f, "  ],\n  \"generation_walk\": {\"bytes\": %.0f, \"ours_ms_best\": %.3f, \"ours_ms_median\": %.3f",
                 walk.bytes, walk.ours_best, walk.ours_median);
    if (walk.blas_best > 0)
      std::fprintf(f, ", \"openblas_ms_best\": %.3f, \"openblas_ms_median\": %.3f", walk.blas_best,
                   walk.blas_median);
    std::fprintf(f, "},\n  \"geomean_ratio\": {");
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
