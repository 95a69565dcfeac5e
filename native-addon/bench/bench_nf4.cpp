// The fused 4-bit NF4 kernels against the fp32 GEMM on the same shapes, in
// one run (issue 3, item 6):
//   training  nt (forward) and nn (input gradient) on SmolLM2-135M's
//             projections (hidden 576, intermediate 1536, kv dim 192) at 256
//             and 1024 tokens: fused dequantize-GEMM vs our fp32 GEMM (and
//             OpenBLAS sgemm when linked). Target: >= 0.8x of fp32.
//   generation  batch-1 GEMV over every decoder projection of a 30-layer
//             SmolLM2-135M-shaped model (106M weights: 425 MB in fp32, 55 MB
//             in NF4), i.e. one token's worth of weight reads, so the weights
//             stream from memory as in real generation rather than sitting in
//             cache. Target: >= 2x faster than the fp32 GEMV. Also timed:
//             the GEMV of each instruction set this CPU can run (portable,
//             AVX2, AVX-512; the backend itself uses the best one).
//
//   load      (--load=smollm2-135m | --load=llama-1b, alone): a QLoRA
//             engine's load_weights of a random BF16 checkpoint of that shape
//             (written to $TMPDIR first, bench_model.h): each block linear
//             widened and quantized to NF4 with double quantization, the
//             16-bit tables used from the mapping. Prints the load's ms and
//             its ns per quantized weight (the quantization dominates), against
//             LoRA's load of the same file in the same run (its frozen 16-bit
//             weights stay in the mapping: what quantizing adds);
//             with out.json, writes them there.
//
// Usage: bench_nf4 [out.json] [--threads=N] [--layers=N] [--quick] [--gemv-only] [--load=SHAPE]
// Each case alternates rounds of the sides and reports medians (and, for
// the generation GEMV, the best round too: on a shared machine the best is
// the least disturbed).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../tests/smollm2_135m.h"
#include "backend/cpu/cpu_backend.h"
#include "bench_model.h"
#include "engine.h"
#include "backend/cpu/nf4_kernels.h"
#include "quant/nf4_quantize.h"

#if defined(PS_HAVE_OPENBLAS)
#include <cblas.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds(const std::function<void()>& fn) {
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds per run of each side (median, and best in `best`), alternating
// rounds after a warm-up.
std::vector<double> time_sides(const std::vector<std::function<void()>>& sides, int rounds, int reps,
                               std::vector<double>* best = nullptr) {
  std::vector<std::vector<double>> t(sides.size());
  for (auto& s : sides) s();
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < sides.size(); ++i)
      for (int k = 0; k < reps; ++k) t[i].push_back(seconds(sides[i]));
  std::vector<double> out;
  if (best) best->clear();
  for (auto& v : t) {
    out.push_back(median(v));
    if (best) best->push_back(*std::min_element(v.begin(), v.end()));
  }
  return out;
}

std::vector<float> normal(size_t n, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Layer {
  const char* name;
  int out, in;
};
const Layer kLayers[] = {{"q_proj/o_proj", 576, 576}, {"k_proj/v_proj", 192, 576},
                         {"gate/up_proj", 1536, 576}, {"down_proj", 576, 1536}};

struct Row {
  std::string layer, op;
  int M, N, K;
  double nf4_gflops, fp32_gflops, blas_gflops;
};

// Times `rounds` loads of a QLoRA engine (a fresh engine each) from one
// random BF16 checkpoint; prints each and the best (the least disturbed on a
// shared machine).
int run_load(const std::string& shape, int threads, int rounds, const char* json_path) {
  ps::ModelSpec s;
  if (shape == "smollm2-135m") s = pstest::smollm2_135m();
  else if (shape == "llama-1b") s = psbench::llama32_1b();
  else {
    std::fprintf(stderr, "--load: unknown shape \"%s\" (smollm2-135m or llama-1b)\n", shape.c_str());
    return 2;
  }
  int64_t quantized = 0;
  for (const auto& w : ps::expected_weights(s))
    if (psbench::is_block_linear(w.name)) quantized += static_cast<int64_t>(psbench::numel(w.shape));
  const char* tmp = std::getenv("TMPDIR");
  const std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/ps_bench_nf4_load_" + shape + ".bin";
  const double write_s = seconds([&] { psbench::write_checkpoint_parallel(s, path, threads); });
  std::printf("load (%s, %.1fM weights in NF4 block linears, BF16 checkpoint written in %.1f s), %d threads:\n",
              shape.c_str(), quantized / 1e6, write_s, threads);
  const auto refs = psbench::checkpoint_refs(s, path);
  // The reference, same process and file: the load LoRA does (the frozen
  // 16-bit tensors used from the mapping, nothing quantized), alternated with
  // the QLoRA one.
  auto best_load = [&](bool nf4) {
    ps::EngineOptions eo;
    eo.threads = threads;
    if (nf4) eo.quantization.type = ps::QuantizationOptions::Type::Nf4;  // blocksize 64, double quantization
    ps::Engine e(s, eo);
    return seconds([&] { e.load_weights(refs); });
  };
  double best = 1e30, best_plain = 1e30;
  for (int r = 0; r < rounds; ++r) {
    const double t = best_load(true), plain = best_load(false);
    best = std::min(best, t);
    best_plain = std::min(best_plain, plain);
    std::printf("  round %d: QLoRA %.0f ms (%.1f ns per quantized weight), LoRA %.0f ms\n", r + 1, t * 1e3,
                t * 1e9 / quantized, plain * 1e3);
  }
  std::printf("  best: QLoRA %.0f ms, %.1f ns per quantized weight; LoRA %.0f ms; QLoRA / LoRA %.2f\n",
              best * 1e3, best * 1e9 / quantized, best_plain * 1e3, best / best_plain);
  std::remove(path.c_str());
  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path);
      return 1;
    }
    std::fprintf(f,
                 "{\"shape\": \"%s\", \"threads\": %d, \"quantized_weights\": %lld, \"qlora_load_ms\": %.1f, "
                 "\"ns_per_quantized_weight\": %.2f, \"lora_load_ms\": %.1f, \"qlora_over_lora\": %.3f}\n",
                 shape.c_str(), threads, static_cast<long long>(quantized), best * 1e3, best * 1e9 / quantized,
                 best_plain * 1e3, best / best_plain);
    std::fclose(f);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  int threads = 2, layers = 30;
  bool quick = false, gemv_only = false;
  std::string load_shape;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
    else if (std::strncmp(argv[i], "--layers=", 9) == 0) layers = std::atoi(argv[i] + 9);
    else if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--gemv-only") == 0) gemv_only = true;
    else if (std::strncmp(argv[i], "--load=", 7) == 0) load_shape = argv[i] + 7;
    else if (argv[i][0] == '-') {
      std::fprintf(stderr,
                   "usage: %s [out.json] [--threads=N] [--layers=N] [--quick] [--gemv-only] "
                   "[--load=smollm2-135m|llama-1b]\n",
                   argv[0]);
      return 2;
    } else json_path = argv[i];
  }
  if (!load_shape.empty()) return run_load(load_shape, threads, quick ? 1 : 3, json_path);
  if (quick) layers = std::min(layers, 4);
#if defined(PS_HAVE_OPENBLAS)
  openblas_set_num_threads(threads);
#endif
  ps::CpuBackend be(threads);
  std::printf("bench_nf4: %s\n\n", be.describe().c_str());

  // ---- training shapes ------------------------------------------------------
  std::vector<Row> rows;
  const int rounds = quick ? 2 : 4, reps = 3;
  if (!gemv_only)
    std::printf("%-14s %-3s %5s %5s %5s %10s %10s %10s %7s\n", "layer", "op", "M", "N", "K",
                "nf4 GF/s", "fp32 GF/s", "blas GF/s", "nf4/fp32");
  for (int tokens : {256, 1024}) {
    if (gemv_only) break;
    for (const Layer& L : kLayers) {
      const auto w = normal((size_t)L.out * L.in, 1, 0.02f);
      const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), L.out, L.in, 64, true);
      std::vector<float> wd((size_t)L.out * L.in);
      be.nf4_dequantize(q.view(), wd.data());
      for (const char* op : {"nt", "nn"}) {
        const bool nt = op[1] == 't';
        const int in_cols = nt ? L.in : L.out, out_cols = nt ? L.out : L.in;
        const auto x = normal((size_t)tokens * in_cols, 2, 1.0f);
        std::vector<float> y((size_t)tokens * out_cols);
        std::vector<std::function<void()>> sides = {
            [&] {
              if (nt) be.nf4_gemm_nt(tokens, x.data(), in_cols, q.view(), 1.0f, 0.0f, y.data(), out_cols);
              else be.nf4_gemm_nn(tokens, x.data(), in_cols, q.view(), 1.0f, 0.0f, y.data(), out_cols);
            },
            [&] {
              if (nt) be.gemm_nt(tokens, L.out, L.in, 1.0f, x.data(), L.in, wd.data(), L.in, 0.0f, y.data(), L.out);
              else be.gemm_nn(tokens, L.in, L.out, 1.0f, x.data(), L.out, wd.data(), L.in, 0.0f, y.data(), L.in);
            }};
#if defined(PS_HAVE_OPENBLAS)
        sides.push_back([&] {
          if (nt)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tokens, L.out, L.in, 1.0f, x.data(),
                        L.in, wd.data(), L.in, 0.0f, y.data(), L.out);
          else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tokens, L.in, L.out, 1.0f, x.data(),
                        L.out, wd.data(), L.in, 0.0f, y.data(), L.in);
        });
#endif
        const std::vector<double> t = time_sides(sides, rounds, reps);
        const double flops = 2.0 * tokens * L.out * L.in;
        Row r{L.name, op, tokens, out_cols, in_cols, flops / t[0] * 1e-9, flops / t[1] * 1e-9,
              t.size() > 2 ? flops / t[2] * 1e-9 : 0.0};
        rows.push_back(r);
        std::printf("%-14s %-3s %5d %5d %5d %10.1f %10.1f %10.1f %7.2f\n", r.layer.c_str(), op, tokens,
                    r.N, r.K, r.nf4_gflops, r.fp32_gflops, r.blas_gflops, r.nf4_gflops / r.fp32_gflops);
      }
    }
  }
  double log_nt = 0, log_nn = 0;
  int n_nt = 0, n_nn = 0;
  for (const Row& r : rows) {
    const double l = std::log(r.nf4_gflops / r.fp32_gflops);
    if (r.op == "nt") log_nt += l, ++n_nt;
    else log_nn += l, ++n_nn;
  }
  const double geo_nt = n_nt ? std::exp(log_nt / n_nt) : 0.0, geo_nn = n_nn ? std::exp(log_nn / n_nn) : 0.0;
  if (!gemv_only) std::printf("\ngeometric-mean nf4/fp32: nt %.2f, nn %.2f\n\n", geo_nt, geo_nn);

  // ---- generation GEMV over a whole model's projections ----------------------
  const Layer per_layer[] = {{"q", 576, 576}, {"k", 192, 576}, {"v", 192, 576}, {"o", 576, 576},
                             {"gate", 1536, 576}, {"up", 1536, 576}, {"down", 576, 1536}};
  std::vector<ps::Nf4Quantized> qw;
  std::vector<std::vector<float>> fw;
  size_t params = 0, nf4_bytes = 0;
  for (int l = 0; l < layers; ++l)
    for (const Layer& L : per_layer) {
      auto w = normal((size_t)L.out * L.in, 100 + l, 0.02f);
      qw.push_back(ps::nf4_quantize(w.data(), L.out, L.in, 64, true));
      fw.push_back(std::move(w));
      params += (size_t)L.out * L.in;
      nf4_bytes += qw.back().resident_bytes();
    }
  const auto x = normal(1536, 3, 1.0f);
  std::vector<float> y(1536);
  std::vector<std::function<void()>> gsides = {
      [&] {
        for (auto& q : qw) be.nf4_gemm_nt(1, x.data(), (int)q.cols, q.view(), 1.0f, 0.0f, y.data(), (int)q.rows);
      },
      [&] {
        for (size_t i = 0; i < fw.size(); ++i)
          be.gemm_nt(1, (int)qw[i].rows, (int)qw[i].cols, 1.0f, x.data(), (int)qw[i].cols, fw[i].data(),
                     (int)qw[i].cols, 0.0f, y.data(), (int)qw[i].rows);
      }};
#if defined(PS_HAVE_OPENBLAS)
  gsides.push_back([&] {
    for (size_t i = 0; i < fw.size(); ++i)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)qw[i].rows, (int)qw[i].cols, 1.0f, fw[i].data(),
                  (int)qw[i].cols, x.data(), 1, 0.0f, y.data(), 1);
  });
#endif
  std::vector<double> gbest;
  const std::vector<double> g = time_sides(gsides, quick ? 2 : 4, 3, &gbest);
  const double gemv_speedup = g[1] / g[0], gemv_best_speedup = gbest[1] / gbest[0];
  std::printf("generation GEMV, %d layers x 7 projections (%.1fM weights; fp32 %.0f MB, NF4 %.1f MB):\n",
              layers, params / 1e6, params * 4.0 / 1e6, nf4_bytes / 1e6);
  std::printf("  nf4 %.2f ms/token (%.1f GB/s of 4-bit weights), fp32 %.2f ms/token (%.1f GB/s)",
              g[0] * 1e3, nf4_bytes / g[0] * 1e-9, g[1] * 1e3, params * 4.0 / g[1] * 1e-9);
  if (g.size() > 2) std::printf(", OpenBLAS sgemv %.2f ms/token", g[2] * 1e3);
  std::printf("\n  nf4 speedup over fp32 GEMV: %.2fx (medians); best rounds: nf4 %.2f ms, fp32 %.2f ms, %.2fx\n",
              gemv_speedup, gbest[0] * 1e3, gbest[1] * 1e3, gemv_best_speedup);

  // The same GEMV per instruction set, against the same fp32 GEMV.
  std::vector<std::function<void()>> isides = {gsides[1]};
  const std::vector<ps::nf4k::GemvIsa> isas = ps::nf4k::usable_gemv_isas();
  for (auto isa : isas)
    isides.push_back([&, isa] {
      for (auto& q : qw)
        ps::nf4k::gemv_nt(isa, be.pool(), 1, x.data(), (int)q.cols, q.view(), 1.0f, 0.0f, y.data(), (int)q.rows);
    });
  const std::vector<double> gi = time_sides(isides, quick ? 1 : 2, 3);
  std::printf("  per ISA (medians):");
  for (size_t i = 0; i < isas.size(); ++i)
    std::printf(" %s %.2f ms (%.2fx)", ps::nf4k::gemv_isa_name(isas[i]), gi[i + 1] * 1e3, gi[0] / gi[i + 1]);
  std::printf("\n");

  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", json_path);
      return 1;
    }
    std::fprintf(f, "{\n  \"threads\": %d,\n  \"backend\": \"%s\",\n  \"training\": [\n", threads,
                 be.describe().c_str());
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"layer\": \"%s\", \"op\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, "
                   "\"nf4_gflops\": %.3f, \"fp32_gflops\": %.3f, \"openblas_gflops\": %.3f, \"ratio\": %.4f}%s\n",
                   r.layer.c_str(), r.op.c_str(), r.M, r.N, r.K, r.nf4_gflops, r.fp32_gflops,
                   r.blas_gflops, r.nf4_gflops / r.fp32_gflops, i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"geomean_ratio\": {\"nt\": %.4f, \"nn\": %.4f},\n", geo_nt, geo_nn);
    std::fprintf(f,
                 "  \"generation\": {\"layers\": %d, \"weights\": %zu, \"fp32_bytes\": %zu, \"nf4_bytes\": %zu, "
                 "\"nf4_ms_per_token\": %.4f, \"fp32_ms_per_token\": %.4f, \"openblas_ms_per_token\": %.4f, "
                 "\"speedup\": %.4f, \"best_nf4_ms_per_token\": %.4f, \"best_fp32_ms_per_token\": %.4f, "
                 "\"best_speedup\": %.4f, \"per_isa_ms_per_token\": {",
                 layers, params, params * 4, nf4_bytes, g[0] * 1e3, g[1] * 1e3,
                 g.size() > 2 ? g[2] * 1e3 : 0.0, gemv_speedup, gbest[0] * 1e3, gbest[1] * 1e3,
                 gemv_best_speedup);
    for (size_t i = 0; i < isas.size(); ++i)
      std::fprintf(f, "%s\"%s\": %.4f", i ? ", " : "", ps::nf4k::gemv_isa_name(isas[i]), gi[i + 1] * 1e3);
    std::fprintf(f, "}}\n}\n");
    std::fclose(f);
  }
  return 0;
}
