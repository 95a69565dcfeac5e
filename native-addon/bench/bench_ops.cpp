// Timings of the CPU backend's non-GEMM ops at training shapes.
//   bench_ops [threads] [portable|avx2] [attention]
// (default: all hardware threads, the widest kernels the CPU has; avx2: no
// AVX-512 attention kernels; attention: the attention rows only)
// Attention is reported with its useful flops (causal: half the T x S square;
// forward 4 T S D Hq / 2, backward 2.5x that), generation's single-query
// attention against a KV cache and the rest in time.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace {

double time_ms(const std::function<void()>& fn, int reps) {
  fn();  // warm-up
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}

std::vector<float> filled(size_t n, float scale) {
  std::vector<float> v(n);
  uint32_t s = 12345;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 16777216.0f * 2.0f - 1.0f);
  }
  return v;
}

void bench_attention(ps::CpuBackend& be, int T, int Hq, int Hkv, int D, int reps) {
  ps::AttnShape s;
  s.B = 1, s.T = T, s.P = 0, s.Hq = Hq, s.Hkv = Hkv, s.D = D;
  const size_t nq = static_cast<size_t>(T) * Hq * D, nkv = static_cast<size_t>(T) * Hkv * D;
  auto q = filled(nq, 1.0f), k = filled(nkv, 1.0f), v = filled(nkv, 1.0f), dout = filled(nq, 1.0f);
  std::vector<float> out(nq), lse(static_cast<size_t>(Hq) * T), dq(nq), dk(nkv), dv(nkv);
  std::vector<int32_t> seg(T, 0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const double fwd = time_ms([&] {
    be.attention_forward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data());
  }, reps);
  const double bwd = time_ms([&] {
    be.attention_backward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data(),
                          dout.data(), dq.data(), dk.data(), dv.data());
  }, reps);
  const double flops = 4.0 * T * (T + 1) / 2.0 * D * Hq;
  std::printf("attention T=%d Hq=%d Hkv=%d D=%d: forward %.3f ms (%.1f GFLOP/s), backward %.3f ms (%.1f GFLOP/s)\n",
              T, Hq, Hkv, D, fwd, flops / fwd / 1e6, bwd, 2.5 * flops / bwd / 1e6);
}

// Generation: one query per row against a KV cache of `past` positions.
void bench_attention_decode(ps::CpuBackend& be, int past, int Hq, int Hkv, int D, int reps) {
  ps::AttnShape s;
  s.B = 1, s.T = 1, s.P = past, s.Hq = Hq, s.Hkv = Hkv, s.D = D;
  const size_t nq = static_cast<size_t>(Hq) * D, nkv = static_cast<size_t>(past + 1) * Hkv * D;
  auto q = filled(nq, 1.0f), k = filled(nkv, 1.0f), v = filled(nkv, 1.0f);
  std::vector<float> out(nq), lse(Hq);
  std::vector<int32_t> seg(1, 0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const double fwd = time_ms([&] {
    be.attention_forward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data());
  }, reps);
  std::printf("attention decode T=1 S=%d Hq=%d Hkv=%d D=%d: forward %.1f us\n", past + 1, Hq, Hkv, D,
              fwd * 1e3);
}

void bench_cross_entropy(ps::CpuBackend& be, int rows, int V, int reps) {
  auto logits = filled(static_cast<size_t>(rows) * V, 4.0f);
  std::vector<float> d(logits.size());
  std::vector<int32_t> targets(rows);
  for (int r = 0; r < rows; ++r) targets[r] = (r * 7919) % V;
  int count = 0;
  const double loss_only = time_ms([&] {
    be.cross_entropy(logits.data(), targets.data(), rows, V, 1.0f, nullptr, &count);
  }, reps);
  const double with_grad = time_ms([&] {
    be.cross_entropy(logits.data(), targets.data(), rows, V, 1.0f, d.data(), &count);
  }, reps);
  std::printf("cross_entropy rows=%d V=%d: loss %.3f ms, loss+grad %.3f ms (%.2f ns/logit)\n", rows, V,
              loss_only, with_grad, with_grad * 1e6 / (static_cast<double>(rows) * V));
}

void bench_elementwise(ps::CpuBackend& be, int rows, int D, int I, int reps) {
  const size_t n = static_cast<size_t>(rows) * I;
  auto g = filled(n, 4.0f), u = filled(n, 1.0f), o = filled(n, 1.0f), dg = filled(n, 0.0f), du = filled(n, 0.0f);
  const double sf = time_ms([&] { be.swiglu_forward(g.data(), u.data(), o.data(), n); }, reps);
  const double sb = time_ms([&] { be.swiglu_backward(g.data(), u.data(), o.data(), dg.data(), du.data(), n); }, reps);
  const size_t m = static_cast<size_t>(rows) * D;
  auto x = filled(m, 1.0f), w = filled(D, 1.0f), y = filled(m, 0.0f), dx = filled(m, 0.0f), dw = filled(D, 0.0f);
  std::vector<float> rstd(rows);
  const double nf = time_ms([&] { be.rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), rows, D, 1e-5f); }, reps);
  const double nb = time_ms([&] {
    be.rmsnorm_backward(y.data(), x.data(), w.data(), rstd.data(), rows, D, dx.data(), dw.data());
  }, reps);
  const double df = time_ms([&] { be.dropout_forward(x.data(), y.data(), m, 0.1f, 42); }, reps);
  const double db = time_ms([&] { be.dropout_backward(x.data(), y.data(), m, 0.1f, 42); }, reps);
  std::printf("swiglu n=%zu: forward %.3f ms, backward %.3f ms\n", n, sf, sb);
  std::printf("rmsnorm rows=%d D=%d: forward %.3f ms, backward %.3f ms\n", rows, D, nf, nb);
  std::printf("dropout n=%zu: forward %.3f ms, backward %.3f ms\n", m, df, db);
  const size_t np = 4u << 20;
  auto p = filled(np, 1.0f), gr = filled(np, 0.01f), mm = filled(np, 0.0f), vv = filled(np, 0.0f);
  for (auto& e : vv) e = std::fabs(e);
  const double ad = time_ms([&] {
    be.adamw_step(p.data(), gr.data(), mm.data(), vv.data(), np, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 3, 1.0f);
  }, reps);
  const double ss = time_ms([&] { be.sum_squares(gr.data(), np); }, reps);
  std::printf("adamw n=%zu: %.3f ms; sum_squares: %.3f ms\n", np, ad, ss);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  const bool portable = argc > 2 && std::string(argv[2]) == "portable";
  const bool no_avx512 = argc > 2 && std::string(argv[2]) == "avx2";
  const bool attention_only = argc > 3 && std::string(argv[3]) == "attention";
  ps::CpuBackend be(threads, portable);
  if (no_avx512) be.set_avx512_attention(false);
  std::printf("%s, attention %s\n", be.describe().c_str(),
              be.use_avx512_attention() ? "avx512" : be.use_avx2() ? "avx2" : "portable");
  bench_attention(be, 256, 9, 3, 64, 10);
  bench_attention(be, 1024, 9, 3, 64, 3);
  bench_attention(be, 2048, 32, 8, 128, 1);
  bench_attention_decode(be, 511, 9, 3, 64, 200);
  bench_attention_decode(be, 2047, 32, 8, 128, 50);
  if (attention_only) return 0;
  bench_cross_entropy(be, 256, 49152, 5);
  bench_cross_entropy(be, 64, 152064, 3);
  bench_elementwise(be, 256, 576, 1536, 10);
  return 0;
}
