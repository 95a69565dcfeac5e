// The CUDA backend's tiled ("flash") attention kernels (attention_flash.cu)
// against a float64 reference written here from the contract (backend.h
// AttnShape), against the reference CUDA kernels (attention_reference.cu)
// and against the CPU backend, on seeded random inputs: odd T and S, prefix
// keys, packed segments with padding (at the end and in the middle of a
// row), GQA (rep 1, 2, 4), D in {16, 64, 96, 128, 200} (every kernel
// configuration), several query and key tiles. Backward accumulates into
// nonzero gradients; nullptr gradients are skipped. Deterministic: the same
// call twice gives the same bits (under the simulator the second run takes
// threads and blocks in reverse order, and CTest also runs the whole test
// reversed). Exits 77 (CTest: skipped) without a CUDA device.
//
// Tolerances, |got - want| <= atol + rtol |want|, inputs in [-2, 2]:
//   against float64: out atol 2e-5, lse atol 2e-5, gradients atol 5e-5, all
//     rtol 1e-4 (fp32 sums of up to a few hundred terms of size <= 4; the
//     softmax's exp/log in fp32);
//   against the CPU backend and the reference kernels: the same bounds (both
//     sides are within them of float64 too, so this checks the three agree
//     without tightening to one side's rounding).
// Each comparison prints its worst error / limit, so the log shows margins.
//
// PS_CUDA_PARITY_TIMING=1 on a real GPU (not the simulator): flash against
// the reference kernels at Llama-3.2-1B (T 2048, Hq 32, Hkv 8, D 64) and
// Llama-3.1-8B (D 128) head shapes, forward and backward, wall clock; and the
// bf16 attention (tensor cores) on a GPU with bf16 tensor cores.
//
// bf16 attention (the default in bf16 precision; set_attention_bf16) is checked against a
// float64 reference with the same rounding points and against
// tests/bf16_reference_backend.h (round_attention): a value rounded to bf16
// on both sides may round the other way on one side when the unrounded
// values differ in the last fp32 bits, so up to 1 % of the elements may be
// outside the fp32 tolerance, none beyond it + 2^-7 max|want| (compare_bf16).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_bf16.h"
#include "bf16_reference_backend.h"
#include "check.h"
#include "bit_compare.h"
#include "device_buffers.h"
#include "error.h"
#include "op_test_util.h"
#include "quant/bf16_round.h"
#ifdef PS_CUDA_SIM
#include "backend/cuda/sim/sim_control.h"
#endif

using ps::AttnShape;
using ps::CpuBackend;
using ps::CudaBackend;
using Kernels = ps::CudaBackend::AttentionKernels;
using optest::Rand;
using optest::random_vec;

namespace {

using cudatest::compare_bits;
using cudatest::kSim;

using Dev = cudatest::DeviceBuffers;

struct Tol {
  double rtol, atol;
};
constexpr Tol kOut = {1e-4, 2e-5}, kLse = {1e-4, 2e-5}, kGrad = {1e-4, 5e-5};

template <typename A, typename B>
void compare(const std::string& what, const std::vector<A>& got, const std::vector<B>& want, Tol tol) {
  if (got.size() != want.size()) {
    pstest::fail(__FILE__, __LINE__, what + ": size mismatch");
    return;
  }
  size_t bad = 0, worst = 0;
  double worst_ratio = -1, max_err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    const double lim = tol.atol + tol.rtol * std::fabs(static_cast<double>(want[i]));
    const double ratio = std::isnan(err) ? 1e300 : err / lim;
    if (!(err <= lim)) ++bad;
    if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
    if (err > max_err || std::isnan(err)) max_err = err;
  }
  std::printf("  %-58s n=%-7zu max|err|=%.3g  worst/limit=%.3g  %s\n", what.c_str(), got.size(), max_err,
              worst_ratio, bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__,
                 what + ": " + std::to_string(bad) + " elements off; worst [" + std::to_string(worst) + "] got " +
                     std::to_string(static_cast<double>(got[worst])) + " want " +
                     std::to_string(static_cast<double>(want[worst])));
}

// ---- float64 reference, straight from the contract ----------------------------
struct Ref {
  std::vector<double> out, lse, dq, dk, dv;  // dq/dk/dv: the gradient alone (no initial value)
};

bool visible(const AttnShape& s, const std::vector<int32_t>& seg, int b, int t, int js) {
  const int32_t st = seg[static_cast<size_t>(b) * s.T + t];
  if (st < 0) return false;
  if (js < s.P) return true;
  const int j = js - s.P;
  return j <= t && seg[static_cast<size_t>(b) * s.T + j] == st;
}

double bf16(double x) { return ps::round_to_bf16(static_cast<float>(x)); }

std::vector<float> rounded(std::vector<float> x) {
  for (float& f : x) f = ps::round_to_bf16(f);
  return x;
}

// bf16: the flash kernels' bf16 semantics (attention_flash.cu) in float64:
// q, k, v, dout rounded; P = exp2(s log2e - M), M = ceil(max), rounded before
// P.V, l of the unrounded P; backward P = exp(s - lse), dS rounded.
Ref reference(const AttnShape& s, const std::vector<float>& q_in, const std::vector<float>& k_in,
              const std::vector<float>& v_in, const std::vector<int32_t>& seg, double scale,
              const std::vector<float>& dout_in, bool bf16_ops = false) {
  const std::vector<float> q = bf16_ops ? rounded(q_in) : q_in, k = bf16_ops ? rounded(k_in) : k_in;
  const std::vector<float> v = bf16_ops ? rounded(v_in) : v_in, dout = bf16_ops ? rounded(dout_in) : dout_in;
  auto rb = [&](double x) { return bf16_ops ? bf16(x) : x; };
  const int S = s.S(), D = s.D, rep = s.Hq / s.Hkv;
  Ref r;
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * D, nk = static_cast<size_t>(s.B) * S * s.Hkv * D;
  r.out.assign(nq, 0.0), r.lse.assign(static_cast<size_t>(s.B) * s.Hq * s.T, 0.0);
  r.dq.assign(nq, 0.0), r.dk.assign(nk, 0.0), r.dv.assign(nk, 0.0);
  std::vector<double> p(S), dp(S);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int t = 0; t < s.T; ++t) {
        if (seg[static_cast<size_t>(b) * s.T + t] < 0) continue;
        const size_t qo = ((static_cast<size_t>(b) * s.T + t) * s.Hq + h) * D;
        auto krow = [&](int js) { return ((static_cast<size_t>(b) * S + js) * s.Hkv + h / rep) * D; };
        double m = -INFINITY;
        for (int js = 0; js < S; ++js) {
          if (!visible(s, seg, b, t, js)) continue;
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += static_cast<double>(q[qo + d]) * k[krow(js) + d];
          p[js] = dot * scale;
          m = std::max(m, p[js]);
        }
        const double ln2 = std::log(2.0);
        const double M = bf16_ops ? std::ceil(m / ln2) : m;  // bf16: in base 2
        double l = 0;
        for (int js = 0; js < S; ++js)
          if (visible(s, seg, b, t, js)) l += (p[js] = bf16_ops ? std::exp2(p[js] / ln2 - M) : std::exp(p[js] - m));
        const double lse = bf16_ops ? ln2 * (M + std::log2(l)) : m + std::log(l);
        r.lse[(static_cast<size_t>(b) * s.Hq + h) * s.T + t] = lse;
        for (int js = 0; js < S; ++js) {
          if (!visible(s, seg, b, t, js)) continue;
          const double pv = rb(p[js]) / l;
          for (int d = 0; d < D; ++d) r.out[qo + d] += pv * v[krow(js) + d];
          p[js] /= l;
        }
        double delta = 0;
        for (int d = 0; d < D; ++d) delta += static_cast<double>(dout[qo + d]) * r.out[qo + d];
        for (int js = 0; js < S; ++js) {
          if (!visible(s, seg, b, t, js)) continue;
          double x = 0;
          for (int d = 0; d < D; ++d) x += static_cast<double>(dout[qo + d]) * v[krow(js) + d];
          const double ds = rb(p[js] * (x - delta)), pv = rb(p[js]);
          for (int d = 0; d < D; ++d) {
            r.dq[qo + d] += scale * ds * k[krow(js) + d];
            r.dk[krow(js) + d] += scale * ds * q[qo + d];
            r.dv[krow(js) + d] += pv * dout[qo + d];
          }
        }
      }
  return r;
}

std::vector<double> plus(const std::vector<float>& a, const std::vector<double>& b) {
  std::vector<double> r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}

// ---- the cases ------------------------------------------------------------------
enum class Segments { One, Packed, PackedMiddlePadding };

struct Case {
  AttnShape s;
  Segments segments;
};

std::vector<int32_t> make_segments(const AttnShape& s, Segments kind, Rand& r) {
  std::vector<int32_t> seg(static_cast<size_t>(s.B) * s.T, 0);
  if (kind == Segments::One) return seg;
  for (int b = 0; b < s.B; ++b) {
    int32_t id = 5 + b;
    int left = r.integer(1, s.T / 2);
    for (int t = 0; t < s.T; ++t) {
      if (left-- == 0) ++id, left = r.integer(1, s.T / 2);
      seg[static_cast<size_t>(b) * s.T + t] = id;
    }
    const int pad = r.integer(1, 5);  // trailing padding
    for (int t = std::max(0, s.T - pad); t < s.T; ++t) seg[static_cast<size_t>(b) * s.T + t] = -1;
    if (kind == Segments::PackedMiddlePadding)
      for (int t = s.T / 3; t < s.T / 3 + 3 && t < s.T; ++t) seg[static_cast<size_t>(b) * s.T + t] = -1;
  }
  return seg;
}

std::string tag_of(const AttnShape& s) {
  return " [B" + std::to_string(s.B) + " T" + std::to_string(s.T) + " P" + std::to_string(s.P) + " Hq" +
         std::to_string(s.Hq) + " Hkv" + std::to_string(s.Hkv) + " D" + std::to_string(s.D) + "]";
}

struct Results {
  std::vector<float> out, lse, dq, dk, dv;
};

// Forward, then backward into copies of the initial gradients, on g.
Results run_cuda(CudaBackend& g, Kernels kernels, const AttnShape& s, const std::vector<float>& q,
                 const std::vector<float>& k, const std::vector<float>& v, const std::vector<int32_t>& seg,
                 float scale, const std::vector<float>& dout, const std::vector<float>& gq0,
                 const std::vector<float>& gk0, const std::vector<float>& gv0) {
  g.set_attention_kernels(kernels);
  Dev dev(g);
  const size_t nq = q.size(), nk = k.size(), nl = static_cast<size_t>(s.B) * s.Hq * s.T;
  float *dq_in = dev.put(q), *dk_in = dev.put(k), *dv_in = dev.put(v), *ddout = dev.put(dout);
  int32_t* dseg = dev.put(seg);
  float *out = dev.put(std::vector<float>(nq)), *lse = dev.put(std::vector<float>(nl));
  g.attention_forward(s, dq_in, dk_in, dv_in, dseg, scale, out, lse);
  float *gq = dev.put(gq0), *gk = dev.put(gk0), *gv = dev.put(gv0);
  g.attention_backward(s, dq_in, dk_in, dv_in, dseg, scale, out, lse, ddout, gq, gk, gv);
  Results r{dev.get(out, nq), dev.get(lse, nl), dev.get(gq, nq), dev.get(gk, nk), dev.get(gv, nk)};
  g.set_attention_kernels(Kernels::Flash);
  return r;
}

// The backward alone, from a given forward's out and lse (host vectors).
Results run_cuda_backward(CudaBackend& g, const AttnShape& s, const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v, const std::vector<int32_t>& seg, float scale,
                          const std::vector<float>& out, const std::vector<float>& lse, const std::vector<float>& dout,
                          const std::vector<float>& gq0, const std::vector<float>& gk0, const std::vector<float>& gv0) {
  Dev dev(g);
  float *dq_in = dev.put(q), *dk_in = dev.put(k), *dv_in = dev.put(v), *ddout = dev.put(dout);
  int32_t* dseg = dev.put(seg);
  const float *dout_fwd = dev.put(out), *dlse = dev.put(lse);
  float *gq = dev.put(gq0), *gk = dev.put(gk0), *gv = dev.put(gv0);
  g.attention_backward(s, dq_in, dk_in, dv_in, dseg, scale, dout_fwd, dlse, ddout, gq, gk, gv);
  return Results{out, lse, dev.get(gq, q.size()), dev.get(gk, k.size()), dev.get(gv, v.size())};
}

void test_case(CpuBackend& c, CudaBackend& g, const Case& cs, Rand& r) {
  const AttnShape& s = cs.s;
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D, nk = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
  const std::vector<float> q = random_vec(nq, r, -2, 2), k = random_vec(nk, r, -2, 2), v = random_vec(nk, r, -2, 2);
  const std::vector<float> dout = random_vec(nq, r, -2, 2);
  const std::vector<float> gq0 = random_vec(nq, r), gk0 = random_vec(nk, r), gv0 = random_vec(nk, r);
  const std::vector<int32_t> seg = make_segments(s, cs.segments, r);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  const std::string tag = tag_of(s);

  const Ref ref = reference(s, q, k, v, seg, scale, dout);
  const Results fl = run_cuda(g, Kernels::Flash, s, q, k, v, seg, scale, dout, gq0, gk0, gv0);
  compare("flash out vs float64" + tag, fl.out, ref.out, kOut);
  compare("flash lse vs float64" + tag, fl.lse, ref.lse, kLse);
  compare("flash dq vs float64" + tag, fl.dq, plus(gq0, ref.dq), kGrad);
  compare("flash dk vs float64" + tag, fl.dk, plus(gk0, ref.dk), kGrad);
  compare("flash dv vs float64" + tag, fl.dv, plus(gv0, ref.dv), kGrad);

  const Results rk = run_cuda(g, Kernels::Reference, s, q, k, v, seg, scale, dout, gq0, gk0, gv0);
  compare("flash out vs reference kernel" + tag, fl.out, rk.out, kOut);
  compare("flash lse vs reference kernel" + tag, fl.lse, rk.lse, kLse);
  compare("flash dq vs reference kernel" + tag, fl.dq, rk.dq, kGrad);
  compare("flash dk vs reference kernel" + tag, fl.dk, rk.dk, kGrad);
  compare("flash dv vs reference kernel" + tag, fl.dv, rk.dv, kGrad);

  std::vector<float> out(nq), lse(static_cast<size_t>(s.B) * s.Hq * s.T), gq = gq0, gk = gk0, gv = gv0;
  c.attention_forward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data());
  c.attention_backward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data(), dout.data(),
                       gq.data(), gk.data(), gv.data());
  compare("flash out vs cpu" + tag, fl.out, out, kOut);
  compare("flash lse vs cpu" + tag, fl.lse, lse, kLse);
  compare("flash dq vs cpu" + tag, fl.dq, gq, kGrad);
  compare("flash dk vs cpu" + tag, fl.dk, gk, kGrad);
  compare("flash dv vs cpu" + tag, fl.dv, gv, kGrad);

  // Padding positions: output 0 and lse 0 exactly; their rows of dq, dk, dv untouched.
  bool pad_ok = true;
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t) {
      if (seg[static_cast<size_t>(b) * s.T + t] >= 0) continue;
      for (int h = 0; h < s.Hq; ++h) {
        pad_ok = pad_ok && fl.lse[(static_cast<size_t>(b) * s.Hq + h) * s.T + t] == 0.0f;
        const size_t o = ((static_cast<size_t>(b) * s.T + t) * s.Hq + h) * s.D;
        for (int d = 0; d < s.D; ++d) pad_ok = pad_ok && fl.out[o + d] == 0.0f && fl.dq[o + d] == gq0[o + d];
      }
      for (int h = 0; h < s.Hkv; ++h) {
        const size_t o = ((static_cast<size_t>(b) * s.S() + s.P + t) * s.Hkv + h) * s.D;
        for (int d = 0; d < s.D; ++d) pad_ok = pad_ok && fl.dk[o + d] == gk0[o + d] && fl.dv[o + d] == gv0[o + d];
      }
    }
  CHECK(pad_ok);

  // nullptr gradients are skipped; the others get the same bits as with all three.
  Dev dev(g);
  float *dq_in = dev.put(q), *dk_in = dev.put(k), *dv_in = dev.put(v), *ddout = dev.put(dout);
  int32_t* dseg = dev.put(seg);
  float *dout_fw = dev.put(fl.out), *dlse = dev.put(fl.lse);
  float *gqa = dev.put(gq0), *gva = dev.put(gv0), *gkb = dev.put(gk0);
  g.attention_backward(s, dq_in, dk_in, dv_in, dseg, scale, dout_fw, dlse, ddout, gqa, nullptr, gva);
  g.attention_backward(s, dq_in, dk_in, dv_in, dseg, scale, dout_fw, dlse, ddout, nullptr, gkb, nullptr);
  compare_bits("flash dq with dk = nullptr" + tag, dev.get(gqa, nq), fl.dq);
  compare_bits("flash dv with dk = nullptr" + tag, dev.get(gva, nk), fl.dv);
  compare_bits("flash dk alone" + tag, dev.get(gkb, nk), fl.dk);
}

void test_determinism(CudaBackend& g, Rand& r) {
  std::printf("determinism (same call twice, same bits%s)\n", kSim ? "; simulator: second run reversed" : "");
  AttnShape s;
  s.B = 2, s.T = 71, s.P = 3, s.Hq = 4, s.Hkv = 2, s.D = 64;
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D, nk = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
  const std::vector<float> q = random_vec(nq, r, -2, 2), k = random_vec(nk, r, -2, 2), v = random_vec(nk, r);
  const std::vector<float> dout = random_vec(nq, r), g0 = random_vec(nq, r), gk0 = random_vec(nk, r);
  const std::vector<int32_t> seg = make_segments(s, Segments::Packed, r);
  Results res[2];
  for (int run = 0; run < 2; ++run) {
#ifdef PS_CUDA_SIM
    ps::cudasim::set_reverse_thread_order(run == 1);
#endif
    res[run] = run_cuda(g, Kernels::Flash, s, q, k, v, seg, 0.125f, dout, g0, gk0, gk0);
  }
#ifdef PS_CUDA_SIM
  ps::cudasim::set_reverse_thread_order(false);
#endif
  compare_bits("out twice", res[1].out, res[0].out);
  compare_bits("lse twice", res[1].lse, res[0].lse);
  compare_bits("dq twice", res[1].dq, res[0].dq);
  compare_bits("dk twice", res[1].dk, res[0].dk);
  compare_bits("dv twice", res[1].dv, res[0].dv);
}

// bf16 results against a reference with the same rounding points: a value
// rounded to bf16 on one side may round the other way on the other when the
// unrounded values differ by their fp32 summation order (at a rounding
// boundary), which moves that term by one bf16 step. So: at most 1 % of the
// elements may leave tol, and none may be further than tol + 2^-7 max|want|
// (the contract's bf16-level bound). Prints both.
template <typename B>
void compare_bf16(const std::string& what, const std::vector<float>& got, const std::vector<B>& want, Tol tol) {
  double wmax = 0;
  for (const B& w : want) wmax = std::max(wmax, std::fabs(static_cast<double>(w)));
  size_t loose = 0, bad = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i]));
    const double lim = tol.atol + tol.rtol * std::fabs(static_cast<double>(want[i]));
    if (!(err <= lim)) ++loose;
    if (!(err <= lim + wmax / 128)) ++bad;
    worst = std::max(worst, std::isnan(err) ? 1e300 : err / (lim + wmax / 128));
  }
  const bool ok = !bad && loose * 100 <= got.size() && got.size() == want.size();
  std::printf("  %-58s n=%-7zu outside tol: %zu (%.2f%%)  worst/bf16 bound=%.3g  %s\n", what.c_str(), got.size(),
              loose, 100.0 * loose / std::max<size_t>(1, got.size()), worst, ok ? "ok" : "FAIL");
  if (!ok)
    pstest::fail(__FILE__, __LINE__, what + ": " + std::to_string(loose) + " outside tol, " + std::to_string(bad) +
                                         " outside the bf16 bound");
}

template <typename A, typename B>
double rms_diff(const std::vector<A>& a, const std::vector<B>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return std::sqrt(s / std::max<size_t>(1, a.size()));
}

// bf16 precision: the flash kernels round q, k, v, dout, P and dS (the
// semantics in attention_flash.cu). Against float64 with the same roundings,
// against the CPU spelling of it (tests/bf16_reference_backend.h, what
// test_cuda_engine compares training runs with), and proof that the rounding
// happens (much closer to the rounded reference than to the fp32 one).
void test_bf16(CudaBackend& g, Rand& r) {
  if (!ps::cuda::has_bf16_tensor_cores(g.device_info())) {
    std::printf("bf16: left out (no bf16 tensor cores on %s)\n", g.device_info().name.c_str());
    return;
  }
  g.set_gemm_precision(CudaBackend::GemmPrecision::Bf16);
  {
    // bf16 attention is the default in bf16 precision; switched off, bf16
    // precision leaves attention fp32, bit for bit.
    CHECK(g.attention_bf16());
    g.set_attention_bf16(false);
    AttnShape s;
    s.B = 1, s.T = 20, s.P = 2, s.Hq = 2, s.Hkv = 1, s.D = 64;
    const size_t nq = static_cast<size_t>(s.T) * s.Hq * s.D, nk = static_cast<size_t>(s.S()) * s.Hkv * s.D;
    const std::vector<float> q = random_vec(nq, r, -2, 2), k = random_vec(nk, r, -2, 2), v = random_vec(nk, r);
    const std::vector<float> dout = random_vec(nq, r), z(nq, 0.0f), zk(nk, 0.0f);
    const std::vector<int32_t> seg(static_cast<size_t>(s.T), 0);
    CHECK(!g.attention_bf16());
    const Results in_bf16 = run_cuda(g, Kernels::Flash, s, q, k, v, seg, 0.125f, dout, z, zk, zk);
    g.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
    const Results in_fp32 = run_cuda(g, Kernels::Flash, s, q, k, v, seg, 0.125f, dout, z, zk, zk);
    g.set_gemm_precision(CudaBackend::GemmPrecision::Bf16);
    compare_bits("bf16 precision, bf16 attention off: out as fp32", in_bf16.out, in_fp32.out);
    compare_bits("bf16 precision, bf16 attention off: dk as fp32", in_bf16.dk, in_fp32.dk);
  }
  g.set_attention_bf16(true);
  bf16ref::Bf16GemmCpuBackend c(1);
  c.round_attention = true;
  // Tensor cores up to D 128 (the D 200 case runs the CUDA-core kernels' bf16 variant).
  struct Shape {
    int B, T, P, Hq, Hkv, D;
  };
  // (B 1, T 150, rep 4, D 128: Llama-3.1-8B's head dim and group, several key tiles.)
  for (const Shape& sh : {Shape{2, 8, 0, 4, 2, 4}, Shape{1, 70, 3, 2, 1, 64}, Shape{1, 45, 3, 2, 1, 96},
                          Shape{1, 40, 3, 2, 1, 200}, Shape{1, 150, 3, 4, 1, 128}}) {
    AttnShape s;
    s.B = sh.B, s.T = sh.T, s.P = sh.P, s.Hq = sh.Hq, s.Hkv = sh.Hkv, s.D = sh.D;
    const int D = s.D;
    const std::string tag = " bf16" + tag_of(s);
    std::printf("case%s\n", tag.c_str());
    const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D, nk = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
    const std::vector<float> q = random_vec(nq, r, -2, 2), k = random_vec(nk, r, -2, 2), v = random_vec(nk, r, -2, 2);
    const std::vector<float> dout = random_vec(nq, r, -2, 2);
    const std::vector<float> gq0 = random_vec(nq, r), gk0 = random_vec(nk, r), gv0 = random_vec(nk, r);
    const std::vector<int32_t> seg = make_segments(s, Segments::PackedMiddlePadding, r);
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
    const Ref ref = reference(s, q, k, v, seg, scale, dout, true);
    const Ref ref32 = reference(s, q, k, v, seg, scale, dout, false);
    const Results fl = run_cuda(g, Kernels::Flash, s, q, k, v, seg, scale, dout, gq0, gk0, gv0);
    // Forward: out within the bf16 rule; lse is not rounded (fp32 statistics): the fp32 tolerance.
    compare_bf16("flash bf16 out vs float64 (rounded)" + tag, fl.out, ref.out, kOut);
    compare("flash bf16 lse vs float64 (rounded)" + tag, fl.lse, ref.lse, kLse);
    // End to end (each side's backward from its own forward) a flip of P in
    // the forward moves out, delta and every dS of its row together (at rep 4
    // ~2 % of dk leaves the fp32 tolerance, all within the bf16 bound), so
    // the gradients end to end are held by rms: 10x closer to the rounded
    // reference than to fp32 semantics (the rounding is there, and in the
    // right places); element by element below, from the same forward.
    const auto near_far = [&](const char* what, const std::vector<float>& got, const std::vector<double>& want,
                              const std::vector<double>& want32, const std::vector<float>& g0) {
      const double near = rms_diff(got, g0.empty() ? want : plus(g0, want));
      const double far = rms_diff(got, g0.empty() ? want32 : plus(g0, want32));
      std::printf("  rms distance to the rounded / fp32 reference: %s %.3g / %.3g\n", what, near, far);
      CHECK(near * 10 < far);
    };
    near_far("out", fl.out, ref.out, ref32.out, {});
    near_far("dq", fl.dq, ref.dq, ref32.dq, gq0);
    near_far("dk", fl.dk, ref.dk, ref32.dk, gk0);
    near_far("dv", fl.dv, ref.dv, ref32.dv, gv0);

    // The CPU spelling of the same roundings: the forward, then both
    // backwards from the CPU's out and lse (the same inputs: only fp32
    // summation order differs, so the 1 % rule holds element by element).
    std::vector<float> out(nq), lse(static_cast<size_t>(s.B) * s.Hq * s.T), gq = gq0, gk = gk0, gv = gv0;
    c.attention_forward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data());
    c.attention_backward(s, q.data(), k.data(), v.data(), seg.data(), scale, out.data(), lse.data(), dout.data(),
                         gq.data(), gk.data(), gv.data());
    compare_bf16("flash bf16 out vs bf16 cpu reference" + tag, fl.out, out, kOut);
    compare("flash bf16 lse vs bf16 cpu reference" + tag, fl.lse, lse, kLse);
    const Results bw = run_cuda_backward(g, s, q, k, v, seg, scale, out, lse, dout, gq0, gk0, gv0);
    compare_bf16("flash bf16 dq vs bf16 cpu reference (same forward)" + tag, bw.dq, gq, kGrad);
    compare_bf16("flash bf16 dk vs bf16 cpu reference (same forward)" + tag, bw.dk, gk, kGrad);
    compare_bf16("flash bf16 dv vs bf16 cpu reference (same forward)" + tag, bw.dv, gv, kGrad);

    if (D != 64) continue;
    Results again[2];
    for (int run = 0; run < 2; ++run) {
#ifdef PS_CUDA_SIM
      ps::cudasim::set_reverse_thread_order(run == 1);
#endif
      again[run] = run_cuda(g, Kernels::Flash, s, q, k, v, seg, scale, dout, gq0, gk0, gv0);
    }
#ifdef PS_CUDA_SIM
    ps::cudasim::set_reverse_thread_order(false);
#endif
    compare_bits("flash bf16 out, dq, dk, dv twice" + tag,
                 [&] {
                   std::vector<float> a = again[1].out;
                   for (auto* x : {&again[1].dq, &again[1].dk, &again[1].dv}) a.insert(a.end(), x->begin(), x->end());
                   return a;
                 }(),
                 [&] {
                   std::vector<float> a = fl.out;
                   for (auto* x : {&fl.dq, &fl.dk, &fl.dv}) a.insert(a.end(), x->begin(), x->end());
                   return a;
                 }());
  }
  g.set_attention_bf16(false);
  g.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
}

template <typename Fn>
bool throws_error(Fn&& fn, const char* needle) {
  try {
    fn();
  } catch (const ps::Error& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return true;
    std::printf("  unexpected message: %s\n", e.what());
  }
  return false;
}

void test_errors(CudaBackend& g) {
  std::printf("errors\n");
  Dev dev(g);
  AttnShape s;
  s.B = 1, s.T = 4, s.P = 0, s.Hq = 1, s.Hkv = 1, s.D = 257;
  float* x = dev.put(std::vector<float>(4 * 257));
  int32_t* seg = dev.put(std::vector<int32_t>(4, 0));
  CHECK(throws_error([&] { g.attention_forward(s, x, x, x, seg, 1.0f, x, x); }, "head dims up to 256"));
  // The kernel choice from the environment, checked by the constructor.
  setenv("PEFT_STUDIO_ATTENTION", "reference", 1);
  {
    CudaBackend r(0);
    CHECK(r.attention_kernels() == Kernels::Reference);
  }
  setenv("PEFT_STUDIO_ATTENTION", "fast", 1);
  CHECK(throws_error([&] { CudaBackend bad(0); }, "PEFT_STUDIO_ATTENTION=fast"));
  unsetenv("PEFT_STUDIO_ATTENTION");
  CudaBackend d(0);
  CHECK(d.attention_kernels() == Kernels::Flash);
  CHECK(d.attention_bf16());
  setenv("PEFT_STUDIO_ATTENTION_BF16", "0", 1);
  {
    CudaBackend e(0);
    CHECK(!e.attention_bf16());
  }
  setenv("PEFT_STUDIO_ATTENTION_BF16", "1", 1);
  {
    CudaBackend e(0);
    CHECK(e.attention_bf16());
  }
  setenv("PEFT_STUDIO_ATTENTION_BF16", "yes", 1);
  CHECK(throws_error([&] { CudaBackend bad(0); }, "PEFT_STUDIO_ATTENTION_BF16=yes"));
  unsetenv("PEFT_STUDIO_ATTENTION_BF16");
}

// PS_CUDA_PARITY_TIMING=1 on a GPU: flash against the reference kernels.
void time_kernels(CudaBackend& g, Rand& r) {
  std::printf("timing (fp32, wall clock around synchronize(), mean of 3 after a warm-up)\n");
  for (int D : {64, 128}) {
    AttnShape s;
    s.B = 1, s.T = 2048, s.P = 0, s.Hq = 32, s.Hkv = 8, s.D = D;
    Dev dev(g);
    const size_t nq = static_cast<size_t>(s.T) * s.Hq * s.D, nk = static_cast<size_t>(s.T) * s.Hkv * s.D;
    float *q = dev.put(random_vec(nq, r)), *k = dev.put(random_vec(nk, r)), *v = dev.put(random_vec(nk, r));
    int32_t* seg = dev.put(std::vector<int32_t>(s.T, 0));
    float *out = dev.put(std::vector<float>(nq)), *lse = dev.put(std::vector<float>(static_cast<size_t>(s.Hq) * s.T));
    float* dq = dev.put(std::vector<float>(nq));
    float *dk = dev.put(std::vector<float>(nk)), *dv = dev.put(std::vector<float>(nk));
    auto time_ms = [&](auto&& fn) {
      fn();
      g.synchronize();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 3; ++i) fn();
      g.synchronize();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 3;
    };
    double ms[2][2];
    for (Kernels kind : {Kernels::Reference, Kernels::Flash}) {
      g.set_attention_kernels(kind);
      const int i = kind == Kernels::Flash;
      ms[i][0] = time_ms([&] { g.attention_forward(s, q, k, v, seg, 0.125f, out, lse); });
      ms[i][1] = time_ms([&] { g.attention_backward(s, q, k, v, seg, 0.125f, out, lse, out, dq, dk, dv); });
    }
    g.set_attention_kernels(Kernels::Flash);
    // Causal: about half of the T x T scores; forward 2 products, backward 4 (plus the recomputed S).
    const double flops = 2.0 * s.T * s.T / 2.0 * s.D * s.Hq;
    std::printf("  attention T2048 Hq32 Hkv8 D%d fp32: forward reference %.2f ms, flash %.2f ms (%.1fx, %.0f GFLOP/s); "
                "backward reference %.2f ms, flash %.2f ms (%.1fx, %.0f GFLOP/s)\n",
                D, ms[0][0], ms[1][0], ms[0][0] / ms[1][0], 2 * flops / ms[1][0] / 1e6, ms[0][1], ms[1][1],
                ms[0][1] / ms[1][1], 5 * flops / ms[1][1] / 1e6);
    if (ps::cuda::has_bf16_tensor_cores(g.device_info())) {
      g.set_gemm_precision(CudaBackend::GemmPrecision::Bf16);
      g.set_attention_bf16(true);
      const double f = time_ms([&] { g.attention_forward(s, q, k, v, seg, 0.125f, out, lse); });
      const double bw = time_ms([&] { g.attention_backward(s, q, k, v, seg, 0.125f, out, lse, out, dq, dk, dv); });
      g.set_attention_bf16(false);
      g.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
      std::printf("  attention T2048 Hq32 Hkv8 D%d bf16 attention (tensor cores): forward %.2f ms (%.0f GFLOP/s); "
                  "backward %.2f ms (%.0f GFLOP/s)\n",
                  D, f, 2 * flops / f / 1e6, bw, 5 * flops / bw / 1e6);
    }
  }
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_flash_attention: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    unsetenv("PEFT_STUDIO_ATTENTION");
    unsetenv("PEFT_STUDIO_ATTENTION_BF16");
    CudaBackend g(0);
    std::printf("backend: %s\n", g.describe().c_str());
    CpuBackend c(2);
    Rand r(20261129);
    std::vector<Case> cases;
    auto add = [&](int B, int T, int P, int Hq, int Hkv, int D, Segments sg) {
      AttnShape s;
      s.B = B, s.T = T, s.P = P, s.Hq = Hq, s.Hkv = Hkv, s.D = D;
      cases.push_back({s, sg});
    };
    add(2, 67, 0, 4, 2, 64, Segments::Packed);                // 2 query tiles, GQA rep 2
    add(1, 45, 5, 4, 2, 16, Segments::PackedMiddlePadding);   // small D, prefix
    add(1, 37, 3, 2, 2, 128, Segments::Packed);               // D 128: 32-key tiles, Hq = Hkv
    add(2, 33, 0, 4, 1, 96, Segments::One);                   // odd-ish D, rep 4
    add(1, 40, 2, 2, 1, 200, Segments::PackedMiddlePadding);  // D 200: the 256 class, 16-row tiles
    add(1, 150, 7, 2, 2, 64, Segments::One);                  // 3 query tiles, 3 key tiles, prefix
    // Each section's wall time goes to the log (the simulator's budget in CTest).
    auto timed = [](const char* name, auto&& fn) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      std::printf("  (%s: %.2f s)\n", name,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    timed("fp32 cases", [&] {
      for (const Case& cs : cases) {
        std::printf("case%s\n", tag_of(cs.s).c_str());
        test_case(c, g, cs, r);
      }
    });
    timed("determinism", [&] { test_determinism(g, r); });
    timed("bf16", [&] { test_bf16(g, r); });
    timed("errors", [&] { test_errors(g); });
    const char* timing = std::getenv("PS_CUDA_PARITY_TIMING");
    if (timing && std::string(timing) == "1") {
      if (kSim) {
        std::printf("timing skipped: the CPU simulator says nothing about GPU speed\n");
      } else {
        try {
          time_kernels(g, r);
        } catch (const ps::Error& e) {
          std::printf("timing aborted: %s\n", e.what());
        }
      }
    }
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  return pstest::finish("test_flash_attention");
}
