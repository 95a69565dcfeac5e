// The fused LoRA kernels (backend/cuda/lora_fused.cu, through
// CudaBackend::lora_forward / lora_backward: fused for r <= 128, the GEMMs
// above) against a float64 reference computed here, and against the CPU
// backend.
//
// Tolerances are fp32-summation bounds per element, with u = 2^-24 and
// g(n) = 2 (n + 2) u (a rounding of up to 2 ulp per addition in any order,
// which covers FMA contraction and the two-stage reductions):
//   H  : g(K) sum_k |X A|
//   Y  : g(r+1) (|Y0| + s sum_j |H B|) + s sum_j eH |B|   (eH: H's bound)
//   dH : g(N) s sum_n |dY B|
//   dB : g(M+1) (|dB0| + s sum_m |dY H|)
//   dA : g(M+1) (|dA0| + sum_m |dH X|) + sum_m edH |X|
//   dX : g(r+1) (|dX0| + sum_j |dH A|) + sum_j edH |A|
// The CPU backend is held to twice the bound for H, Y and dH (both sides are
// within it), and for dA, dB, dX to 4 g(n) (max |CPU value| + 1), n the
// summation length (the float64 checks are the strict ones).
// In bf16 precision the reference rounds the operands of each product to
// bf16 as the contract says (H and dH: the device's own fp32 outputs,
// rounded as operands of the second products), the products are then exact
// and the same bounds apply. A small case proves the rounding (values that
// give different answers in fp32), another that nullptr gradients are
// skipped and dH left alone when nothing needs it. Determinism: the same
// bits twice; CTest also runs the simulator build with reversed thread and
// block order (test_lora_fused_sim_reverse).
//
// PS_CUDA_PARITY_TIMING=1 on a GPU (not the simulator): the fused kernels
// against the four GEMMs at M=4096 (2 x 2048 tokens), K=N=2048, r=16 (and
// r=64, 128), fp32 and bf16.
// Exits 77 (CTest: skipped) without a device.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_bf16.h"
#include "backend/cuda/lora_fused.h"
#include "check.h"
#include "device_buffers.h"
#include "op_test_util.h"
#include "quant/bf16_round.h"
#ifdef PS_CUDA_SIM
#include "backend/cuda/sim/sim_control.h"
#endif

using ps::CpuBackend;
using ps::CudaBackend;
using optest::Rand;
using optest::random_vec;
using Dev = cudatest::DeviceBuffers;

namespace {

using cudatest::kSim;

constexpr double kU = 1.0 / (1 << 24);
double g(double n) { return 2.0 * (n + 2.0) * kU; }

struct Case {
  int M, N, K, r;
  float s;
};

std::string label(const Case& c, bool bf16) {
  return "M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
         " r=" + std::to_string(c.r) + (bf16 ? " bf16" : " fp32");
}

// Every element within its bound; prints the worst got/bound ratio.
void check_bound(const std::string& what, const std::vector<float>& got, const std::vector<double>& want,
                 const std::vector<double>& bound, double factor = 1.0) {
  size_t bad = 0, worst_at = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double lim = factor * bound[i] + 1e-30;
    const double ratio = std::isnan(err) ? INFINITY : err / lim;
    if (!(err <= lim)) ++bad;
    if (ratio > worst || std::isnan(ratio)) worst = ratio, worst_at = i;
  }
  std::printf("  %-52s n=%-7zu worst/limit %.3g  %s\n", what.c_str(), got.size(), worst, bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__,
                 what + ": " + std::to_string(bad) + " elements beyond the fp32 bound; worst [" +
                     std::to_string(worst_at) + "] got " + std::to_string(got[worst_at]) + " want " +
                     std::to_string(want[worst_at]));
}

void check_bits(const std::string& what, const std::vector<float>& a, const std::vector<float>& b) {
  const bool same = a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  std::printf("  %-52s same bits %s\n", what.c_str(), same ? "ok" : "FAIL");
  if (!same) pstest::fail(__FILE__, __LINE__, what + ": not the same bits twice");
}

float op(float x, bool bf16) { return bf16 ? ps::round_to_bf16(x) : x; }

struct Inputs {
  std::vector<float> X, A, B, Y0, dY, dA0, dB0, dX0;
};

Inputs random_inputs(const Case& c, Rand& rng) {
  const size_t M = c.M, N = c.N, K = c.K, r = c.r;
  Inputs in;
  in.X = random_vec(M * K, rng);
  in.A = random_vec(r * K, rng, -0.5f, 0.5f);
  in.B = random_vec(N * r, rng, -0.5f, 0.5f);
  in.Y0 = random_vec(M * N, rng);
  in.dY = random_vec(M * N, rng);
  in.dA0 = random_vec(r * K, rng);
  in.dB0 = random_vec(N * r, rng);
  in.dX0 = random_vec(M * K, rng);
  return in;
}

// Forward and backward of one case on the CUDA backend (fused for r <= 64)
// against the float64 reference, in the backend's current precision; the
// gradients named in `grads` ("a", "b", "x") are given, the others nullptr.
// With a CPU backend (fp32 only) its results are compared too.
void check_case(CudaBackend& be, CpuBackend* cpu, Rand& rng, const Case& c, const std::string& grads = "abx") {
  const bool bf16 = be.gemm_precision() == CudaBackend::GemmPrecision::Bf16;
  const bool want_a = grads.find('a') != std::string::npos, want_b = grads.find('b') != std::string::npos,
             want_x = grads.find('x') != std::string::npos;
  const std::string tag = label(c, bf16) + (grads == "abx" ? "" : " grads=" + (grads.empty() ? "none" : grads));
  const int M = c.M, N = c.N, K = c.K, r = c.r;
  const double s = c.s;
  const Inputs in = random_inputs(c, rng);
  Dev dev(be);
  float *X = dev.put(in.X), *A = dev.put(in.A), *B = dev.put(in.B), *Y = dev.put(in.Y0);
  float* H = dev.put(std::vector<float>(static_cast<size_t>(M) * r, NAN));
  be.lora_forward(M, N, K, r, c.s, X, A, B, H, Y);
  const std::vector<float> Hg = dev.get(H, static_cast<size_t>(M) * r), Yg = dev.get(Y, in.Y0.size());

  // Forward reference.
  std::vector<double> Href(Hg.size()), eH(Hg.size()), Yref(Yg.size()), eY(Yg.size());
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < r; ++j) {
      double sum = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        const double t = static_cast<double>(op(in.X[static_cast<size_t>(m) * K + k], bf16)) *
                         op(in.A[static_cast<size_t>(j) * K + k], bf16);
        sum += t, mag += std::fabs(t);
      }
      Href[static_cast<size_t>(m) * r + j] = sum;
      eH[static_cast<size_t>(m) * r + j] = g(K) * mag;
    }
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      // fp32: from the float64 H, plus H's error carried through B; bf16:
      // from the device's own H, rounded as the second product's operand.
      double sum = 0, mag = 0, carried = 0;
      for (int j = 0; j < r; ++j) {
        const size_t hj = static_cast<size_t>(m) * r + j;
        const double b = op(in.B[static_cast<size_t>(n) * r + j], bf16);
        const double h = bf16 ? static_cast<double>(ps::round_to_bf16(Hg[hj])) : Href[hj];
        sum += h * b, mag += std::fabs(h * b);
        if (!bf16) carried += eH[hj] * std::fabs(b);
      }
      const size_t at = static_cast<size_t>(m) * N + n;
      Yref[at] = in.Y0[at] + s * sum;
      eY[at] = g(r + 1) * (std::fabs(in.Y0[at]) + std::fabs(s) * mag) + std::fabs(s) * carried;
    }
  check_bound("forward H   " + tag, Hg, Href, eH);
  check_bound("forward Y   " + tag, Yg, Yref, eY);

  // Backward from the device's H (an input: the reference uses the same values).
  float* dYd = dev.put(in.dY);
  const std::vector<float> dH_sentinel(Hg.size(), 7.0f);
  float* dH = dev.put(dH_sentinel);
  float* dA = want_a ? dev.put(in.dA0) : nullptr;
  float* dB = want_b ? dev.put(in.dB0) : nullptr;
  float* dX = want_x ? dev.put(in.dX0) : nullptr;
  be.lora_backward(M, N, K, r, c.s, X, A, B, H, dYd, dH, dA, dB, dX);
  const std::vector<float> dHg = dev.get(dH, Hg.size());
  std::vector<double> dHref(Hg.size()), edH(Hg.size());
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < r; ++j) {
      double sum = 0, mag = 0;
      for (int n = 0; n < N; ++n) {
        const double t = static_cast<double>(op(in.dY[static_cast<size_t>(m) * N + n], bf16)) *
                         op(in.B[static_cast<size_t>(n) * r + j], bf16);
        sum += t, mag += std::fabs(t);
      }
      dHref[static_cast<size_t>(m) * r + j] = s * sum;
      edH[static_cast<size_t>(m) * r + j] = g(N) * std::fabs(s) * mag;
    }
  // The dH operand of dA / dX: float64 (fp32) or the device's, rounded (bf16).
  auto dh_operand = [&](size_t at) {
    return bf16 ? static_cast<double>(ps::round_to_bf16(dHg[at])) : dHref[at];
  };
  if (want_a || want_x) {
    check_bound("backward dH " + tag, dHg, dHref, edH);
  } else {
    check_bits("backward dH untouched without dA, dX " + tag, dHg, dH_sentinel);
  }
  std::vector<float> dBg, dAg, dXg;
  if (want_b) {
    dBg = dev.get(dB, in.dB0.size());
    std::vector<double> ref(dBg.size()), bound(dBg.size());
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < r; ++j) {
        double sum = 0, mag = 0;
        for (int m = 0; m < M; ++m) {
          const double t = static_cast<double>(op(in.dY[static_cast<size_t>(m) * N + n], bf16)) *
                           op(Hg[static_cast<size_t>(m) * r + j], bf16);
          sum += t, mag += std::fabs(t);
        }
        const size_t at = static_cast<size_t>(n) * r + j;
        ref[at] = in.dB0[at] + s * sum;
        bound[at] = g(M + 1) * (std::fabs(in.dB0[at]) + std::fabs(s) * mag);
      }
    check_bound("backward dB " + tag, dBg, ref, bound);
  }
  if (want_a) {
    dAg = dev.get(dA, in.dA0.size());
    std::vector<double> ref(dAg.size()), bound(dAg.size());
    for (int j = 0; j < r; ++j)
      for (int k = 0; k < K; ++k) {
        double sum = 0, mag = 0, carried = 0;
        for (int m = 0; m < M; ++m) {
          const size_t hj = static_cast<size_t>(m) * r + j;
          const double x = op(in.X[static_cast<size_t>(m) * K + k], bf16);
          sum += dh_operand(hj) * x, mag += std::fabs(dh_operand(hj) * x);
          if (!bf16) carried += edH[hj] * std::fabs(x);
        }
        const size_t at = static_cast<size_t>(j) * K + k;
        ref[at] = in.dA0[at] + sum;
        bound[at] = g(M + 1) * (std::fabs(in.dA0[at]) + mag) + carried;
      }
    check_bound("backward dA " + tag, dAg, ref, bound);
  }
  if (want_x) {
    dXg = dev.get(dX, in.dX0.size());
    std::vector<double> ref(dXg.size()), bound(dXg.size());
    for (int m = 0; m < M; ++m)
      for (int k = 0; k < K; ++k) {
        double sum = 0, mag = 0, carried = 0;
        for (int j = 0; j < r; ++j) {
          const size_t hj = static_cast<size_t>(m) * r + j;
          const double a = op(in.A[static_cast<size_t>(j) * K + k], bf16);
          sum += dh_operand(hj) * a, mag += std::fabs(dh_operand(hj) * a);
          if (!bf16) carried += edH[hj] * std::fabs(a);
        }
        const size_t at = static_cast<size_t>(m) * K + k;
        ref[at] = in.dX0[at] + sum;
        bound[at] = g(r + 1) * (std::fabs(in.dX0[at]) + mag) + carried;
      }
    check_bound("backward dX " + tag, dXg, ref, bound);
  }

  // The same bits again (forward from the same Y0, backward from the same
  // starting gradients), in the simulator with the threads and blocks in the
  // other order: a sum whose order depended on scheduling would differ.
  {
#ifdef PS_CUDA_SIM
    struct Flip {
      Flip() { ps::cudasim::set_reverse_thread_order(!ps::cudasim::reverse_thread_order()); }
      ~Flip() { ps::cudasim::set_reverse_thread_order(!ps::cudasim::reverse_thread_order()); }
    } flip;
#endif
    float* Y2 = dev.put(in.Y0);
    float* H2 = dev.put(std::vector<float>(Hg.size()));
    be.lora_forward(M, N, K, r, c.s, X, A, B, H2, Y2);
    check_bits("again: forward H, Y " + tag, dev.get(H2, Hg.size()), Hg);
    check_bits("again: forward Y " + tag, dev.get(Y2, Yg.size()), Yg);
    float* dH2 = dev.put(dH_sentinel);
    float* dA2 = want_a ? dev.put(in.dA0) : nullptr;
    float* dB2 = want_b ? dev.put(in.dB0) : nullptr;
    float* dX2 = want_x ? dev.put(in.dX0) : nullptr;
    be.lora_backward(M, N, K, r, c.s, X, A, B, H, dYd, dH2, dA2, dB2, dX2);
    check_bits("again: backward dH " + tag, dev.get(dH2, Hg.size()), dHg);
    if (want_a) check_bits("again: backward dA " + tag, dev.get(dA2, dAg.size()), dAg);
    if (want_b) check_bits("again: backward dB " + tag, dev.get(dB2, dBg.size()), dBg);
    if (want_x) check_bits("again: backward dX " + tag, dev.get(dX2, dXg.size()), dXg);
  }

  // The CPU backend on the same inputs (fp32: within twice the bound).
  if (cpu && !bf16) {
    std::vector<float> Hc(Hg.size()), Yc = in.Y0, dHc(Hg.size()), dAc = in.dA0, dBc = in.dB0, dXc = in.dX0;
    cpu->lora_forward(M, N, K, r, c.s, in.X.data(), in.A.data(), in.B.data(), Hc.data(), Yc.data());
    cpu->lora_backward(M, N, K, r, c.s, in.X.data(), in.A.data(), in.B.data(), Hg.data(), in.dY.data(), dHc.data(),
                       want_a ? dAc.data() : nullptr, want_b ? dBc.data() : nullptr, want_x ? dXc.data() : nullptr);
    auto as_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    check_bound("vs CPU: H   " + tag, Hg, as_double(Hc), eH, 2.0);
    check_bound("vs CPU: Y   " + tag, Yg, as_double(Yc), eY, 2.0);
    if (want_a || want_x) check_bound("vs CPU: dH  " + tag, dHg, as_double(dHc), edH, 2.0);
    // dA / dX / dB bounds: recomputed loosely from the reference magnitudes
    // above would repeat the loops; the float64 checks above are the strict
    // ones, here a relative bound on the largest magnitude suffices.
    auto loose = [&](const std::vector<float>& got, const std::vector<float>& want, int n_terms) {
      double scale = 0;
      for (float v : want) scale = std::max(scale, static_cast<double>(std::fabs(v)));
      return std::vector<double>(got.size(), g(n_terms) * (scale + 1.0) * 4.0);
    };
    if (want_b) check_bound("vs CPU: dB  " + tag, dBg, as_double(dBc), loose(dBg, dBc, M + 1));
    if (want_a) check_bound("vs CPU: dA  " + tag, dAg, as_double(dAc), loose(dAg, dAc, M + N + 1));
    if (want_x) check_bound("vs CPU: dX  " + tag, dXg, as_double(dXc), loose(dXg, dXc, N + r + 1));
  }
}

// bf16: values whose fp32 and bf16 answers differ, so each rounding shows.
// X = [1, 2^-9], A = [1, 1]: H = 1 + 2^-9 in fp32 (both operands are bf16
// values), written unrounded; as the operand of H·Bᵀ it is bf16(1 + 2^-9) = 1,
// so Y = 0 + 1·1 = 1 (fp32: 1.001953125). Backward with dY = [1, 2^-9],
// B = [1, 1]ᵀ: dH = 1 + 2^-9; dX = bf16(dH)·A = [1, 1]; dA = bf16(dH)·X =
// [1, 2^-9]; dB = dYᵀ·bf16(H) = [1, 2^-9]. And X = 1 + 2^-10 (not a bf16
// value, rounds to 1) times A = 1 over K = 8 gives H = 8 (fp32: 8.0078125).
void check_bf16_rounding(CudaBackend& be) {
  std::printf("bf16 operand rounding\n");
  Dev dev(be);
  const float e9 = 1.0f / 512.0f;
  {
    float *X = dev.put(std::vector<float>{1.0f, e9}), *A = dev.put(std::vector<float>{1.0f, 1.0f});
    float *B = dev.put(std::vector<float>{1.0f, 1.0f}), *Y = dev.put(std::vector<float>{0.0f, 0.0f});
    float* H = dev.put(std::vector<float>{0.0f});
    be.lora_forward(1, 2, 2, 1, 1.0f, X, A, B, H, Y);
    const float h = dev.get(H, 1)[0];
    const std::vector<float> y = dev.get(Y, 2);
    std::printf("  H = %.10g (want 1.001953125, unrounded), Y = %.10g %.10g (want 1 1; fp32 gives 1.001953125)\n", h,
                y[0], y[1]);
    CHECK(h == 1.0f + e9);
    CHECK(y[0] == 1.0f && y[1] == 1.0f);
    float *dY = dev.put(std::vector<float>{1.0f, e9}), *dH = dev.put(std::vector<float>{0.0f});
    float *dA = dev.put(std::vector<float>{0.0f, 0.0f}), *dB = dev.put(std::vector<float>{0.0f, 0.0f});
    float* dX = dev.put(std::vector<float>{0.0f, 0.0f});
    be.lora_backward(1, 2, 2, 1, 1.0f, X, A, B, H, dY, dH, dA, dB, dX);
    const float dh = dev.get(dH, 1)[0];
    const std::vector<float> da = dev.get(dA, 2), db = dev.get(dB, 2), dx = dev.get(dX, 2);
    std::printf("  dH = %.10g, dX = %.10g %.10g, dA = %.10g %.10g, dB = %.10g %.10g\n", dh, dx[0], dx[1], da[0], da[1],
                db[0], db[1]);
    CHECK(dh == 1.0f + e9);
    CHECK(dx[0] == 1.0f && dx[1] == 1.0f);
    CHECK(da[0] == 1.0f && da[1] == e9);
    CHECK(db[0] == 1.0f && db[1] == e9);
  }
  {
    const int K = 8;
    float *X = dev.put(std::vector<float>(K, 1.0f + 1.0f / 1024.0f)), *A = dev.put(std::vector<float>(K, 1.0f));
    float *B = dev.put(std::vector<float>{1.0f}), *Y = dev.put(std::vector<float>{0.0f});
    float* H = dev.put(std::vector<float>{0.0f});
    be.lora_forward(1, 1, K, 1, 0.5f, X, A, B, H, Y);
    const float h = dev.get(H, 1)[0], y = dev.get(Y, 1)[0];
    std::printf("  (1 + 2^-10) . 1 over K=8: H = %.10g (bf16: 8), Y = 0.5 H = %.10g\n", h, y);
    CHECK(h == 8.0f);
    CHECK(y == 4.0f);
  }
}

void check_errors(CudaBackend& be) {
  CHECK(!ps::cuda::lora_fused_supported(4, 4, 4, 129));
  CHECK(ps::cuda::lora_fused_supported(4, 4, 4, 128));
  CHECK(!ps::cuda::lora_fused_supported(0, 4, 4, 8));
  CHECK(ps::cuda::lora_fused_supported(1, 1, 1, 1));
  bool threw = false;
  try {
    ps::cuda::lora_fused_forward(4, 4, 4, 129, 1.0f, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, false);
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("1 <= r <= 128") != std::string::npos;
  }
  CHECK(threw);
  threw = false;
  try {
    be.lora_forward(-1, 4, 4, 8, 1.0f, nullptr, nullptr, nullptr, nullptr, nullptr);
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("negative dimension") != std::string::npos;
  }
  CHECK(threw);
}

// PS_CUDA_PARITY_TIMING=1 on a GPU: fused against the four GEMMs (the same
// backend's gemm_nt/nn/tn: cuBLASLt when it loads, else the own kernels).
void time_fused(CudaBackend& be, Rand& rng, int M, int N, int K, int r) {
  const float s = 2.0f;
  std::printf("timing: LoRA M=%d rows (tokens) N=%d K=%d r=%d, gemm: %s\n", M, N, K, r,
              be.gemm_description().c_str());
  Dev dev(be);
  float *X = dev.put(random_vec(static_cast<size_t>(M) * K, rng)), *A = dev.put(random_vec(static_cast<size_t>(r) * K, rng));
  float *B = dev.put(random_vec(static_cast<size_t>(N) * r, rng)), *Y = dev.put(random_vec(static_cast<size_t>(M) * N, rng));
  float *H = dev.put(std::vector<float>(static_cast<size_t>(M) * r)), *dY = dev.put(random_vec(static_cast<size_t>(M) * N, rng));
  float *dH = dev.put(std::vector<float>(static_cast<size_t>(M) * r)), *dA = dev.put(std::vector<float>(static_cast<size_t>(r) * K));
  float *dB = dev.put(std::vector<float>(static_cast<size_t>(N) * r)), *dX = dev.put(std::vector<float>(static_cast<size_t>(M) * K));
  auto time_ms = [&](auto&& fn) {
    fn();  // warm-up (and scratch growth)
    be.synchronize();
    const int reps = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) fn();
    be.synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  // The minimum traffic: forward X + Y read/write + H; backward dY + X + dX read/write + dH.
  const double fwd_bytes = 4.0 * (double(M) * K + 2.0 * M * N + double(M) * r);
  const double bwd_bytes = 4.0 * (double(M) * N + 3.0 * M * K + 2.0 * M * r);
  const bool bf16_ok = ps::cuda::has_bf16_tensor_cores(be.device_info());
  for (const bool bf16 : {false, true}) {
    if (bf16 && !bf16_ok) continue;
    be.set_gemm_precision(bf16 ? CudaBackend::GemmPrecision::Bf16 : CudaBackend::GemmPrecision::Fp32);
    const double f_fused = time_ms([&] { be.lora_forward(M, N, K, r, s, X, A, B, H, Y); });
    const double f_gemm = time_ms([&] {
      be.gemm_nt(M, r, K, 1.0f, X, K, A, K, 0.0f, H, r);
      be.gemm_nt(M, N, r, s, H, r, B, r, 1.0f, Y, N);
    });
    const double b_fused = time_ms([&] { be.lora_backward(M, N, K, r, s, X, A, B, H, dY, dH, dA, dB, dX); });
    const double b_gemm = time_ms([&] {
      be.gemm_tn(N, r, M, s, dY, N, H, r, 1.0f, dB, r);
      be.gemm_nn(M, r, N, s, dY, N, B, r, 0.0f, dH, r);
      be.gemm_tn(r, K, M, 1.0f, dH, r, X, K, 1.0f, dA, K);
      be.gemm_nn(M, K, r, 1.0f, dH, r, A, K, 1.0f, dX, K);
    });
    std::printf("  %s forward : fused %.3f ms (%.0f GB/s of minimum traffic), four GEMMs %.3f ms: %.2fx\n",
                bf16 ? "bf16" : "fp32", f_fused, fwd_bytes / f_fused / 1e6, f_gemm, f_gemm / f_fused);
    std::printf("  %s backward: fused %.3f ms (%.0f GB/s of minimum traffic), four GEMMs %.3f ms: %.2fx\n",
                bf16 ? "bf16" : "fp32", b_fused, bwd_bytes / b_fused / 1e6, b_gemm, b_gemm / b_fused);
  }
  be.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_lora_fused: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    CudaBackend be(0);
    CpuBackend cpu(2);
    Rand rng(20261129);
    std::printf("device: %s\n", be.describe().c_str());
    // Odd sizes everywhere (tails of the 32-row tiles, the 32/64-column
    // chunks, the 128-column groups); r in {1, 8, 16, 64} (padded ranks 16,
    // 16, 16, 64) plus 24 (padded 32), 72 and 128 (two rank slices: 64 + 8,
    // 64 + 64) and 130 (the GEMM path). M = 1100: 35 row
    // tiles in 18 row groups of 2 (the backward's blocks walk several row
    // tiles: partial sums and the next tile's prefetch); N = 4200: 33 column
    // super-chunks in 17 groups of 2 (dH partials summed across super-chunks
    // by the same thread); K = 260 and 8300: the forward's H from 2 and 17
    // K-group partials (512 columns each for 8300).
    std::vector<Case> cases = {{1, 1, 1, 1, 2.0f},      {37, 45, 29, 8, 2.0f},   {70, 130, 150, 16, 0.5f},
                               {33, 50, 70, 64, 1.0f},  {45, 67, 260, 1, 4.0f},  {1100, 40, 33, 16, 2.0f},
                               {5, 4200, 20, 8, 1.0f},  {41, 37, 53, 24, 2.0f},  {19, 23, 31, 72, 2.0f},
                               {3, 20, 8300, 4, 1.0f},  {21, 70, 45, 128, 1.0f}, {19, 23, 31, 130, 2.0f}};
    if (!kSim) {
      cases.push_back({1000, 1100, 900, 16, 2.0f});
      cases.push_back({257, 4100, 300, 64, 0.25f});
      cases.push_back({2049, 333, 2100, 8, 2.0f});
    }
    std::printf("fp32\n");
    for (const Case& c : cases) check_case(be, &cpu, rng, c);
    std::printf("fp32, nullptr gradients\n");
    for (const char* grads : {"", "a", "b", "x", "ab", "ax", "bx"}) check_case(be, &cpu, rng, {37, 45, 29, 16, 2.0f}, grads);
    if (ps::cuda::has_bf16_tensor_cores(be.device_info())) {
      be.set_gemm_precision(CudaBackend::GemmPrecision::Bf16);
      std::printf("bf16 operands\n");
      for (const Case& c : cases) check_case(be, nullptr, rng, c);
      check_case(be, nullptr, rng, {37, 45, 29, 16, 2.0f}, "ax");
      check_bf16_rounding(be);
      be.set_gemm_precision(CudaBackend::GemmPrecision::Fp32);
    } else {
      std::printf("bf16: skipped (no bf16 tensor cores on this device)\n");
    }
    check_errors(be);
    be.synchronize();
    const char* timing = std::getenv("PS_CUDA_PARITY_TIMING");
    if (timing && std::string(timing) == "1") {
      if (kSim) {
        std::printf("timing skipped: the CPU simulator says nothing about GPU speed\n");
      } else {
        try {  // informational: a failure here does not fail the test
          time_fused(be, rng, 4096, 2048, 2048, 16);
          time_fused(be, rng, 4096, 2048, 2048, 64);   // the largest single-slice rank
          time_fused(be, rng, 4096, 2048, 2048, 128);  // two rank slices
          time_fused(be, rng, 16384, 14336, 4096, 64);   // Llama-3.1-8B MLP, 8 x 2048 tokens: the partial budget binds
        } catch (const ps::Error& e) {
          std::printf("timing aborted: %s\n", e.what());
        }
      }
    }
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_lora_fused");
}
