// The GEMMs against stored weights without widening (weight_gemv.cu,
// weight_gemm.cu's bf16 route):
//
// 1. The fused GEMV (nf4_gemm_nt / half_gemm_nt with 1..8 rows, and
//    cuda::gemv_f32_nt) against a float64 sum over the exact weight values
//    (the CPU backend's NF4 dequantize and 16-bit widening, which the parity
//    test proves equal to the CUDA kernels' bits), within an fp32-summation
//    bound per element; in bf16 precision over bf16(x) * bf16(w). NF4 plain and
//    double-quantized, BF16, F16, fp32; K odd, not a multiple of the
//    blocksize or of 8 (blocks crossing row ends, rows starting on a low
//    nibble or off a 16-byte boundary: the scalar fallback), K over one
//    1024-value slice; M = 1..8; alpha, beta 0 (NaN-filled output: it must
//    not be read) and 1; row strides wider than the rows (padding untouched).
// 2. Every dequantized value bit for bit: x one-hot (row m = e_k) makes
//    y[m, n] = W[n, k] exactly, compared with the CPU's bits for every k.
// 3. The backend ops take the GEMV (same bits as calling it directly), and
//    the simulator's reversed thread order (or a second run on a GPU) gives
//    the same bits (fixed-order sums).
// 4. bf16 precision without fp32 widening: nf4/half_gemm_nt/nn with the new
//    route (BF16 read in place, F16 / NF4 converted into bf16 scratch, raw-bf16
//    operand) bit-identical to the old widen-then-round route
//    (set_weight_gemm_paths(..., false)) with the own kernels, on shapes with
//    edge tiles and several chunks; and within the bound of the reference.
// 5. PS_CUDA_PARITY_TIMING=1 on a GPU: a Llama-3.2-1B MLP weight (8192 x 2048)
//    in NF4 and BF16, M = 1 and 8, fused GEMV against the chunked path; and at
//    M = 2048 in bf16, the bf16 weight operand against widen-then-round.
// Exits 77 (CTest: skipped) without a device.
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
#include "backend/cuda/weight_gemv.h"
#include "check.h"
#include "device_buffers.h"
#include "op_test_util.h"
#include "quant/bf16_round.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#ifdef PS_CUDA_SIM
#include "backend/cuda/sim/sim_control.h"
#endif

using ps::CudaBackend;
using optest::Rand;
using optest::random_vec;
using Precision = ps::CudaBackend::GemmPrecision;

namespace {

using cudatest::kSim;

enum class Kind { Nf4, Nf4Dq, Bf16, F16, F32 };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Nf4: return "nf4";
    case Kind::Nf4Dq: return "nf4-dq";
    case Kind::Bf16: return "bf16";
    case Kind::F16: return "f16";
    default: return "f32";
  }
}

// Random finite 16-bit values built from their bits (every mantissa bit used).
std::vector<uint16_t> random_half(size_t n, bool bf16, Rand& r) {
  std::vector<uint16_t> h(n);
  for (auto& v : h) {
    const uint16_t sign = static_cast<uint16_t>((r.next() & 1) << 15);
    const int e = r.integer(-5, -1);
    const uint16_t mant = static_cast<uint16_t>(r.next() & (bf16 ? 0x7F : 0x3FF));
    v = bf16 ? static_cast<uint16_t>(sign | ((e + 127) << 7) | mant)
             : static_cast<uint16_t>(sign | ((e + 15) << 10) | mant);
  }
  return h;
}

// A weight [N, K] on the device with the exact fp32 value of every element.
struct Weight {
  Kind kind;
  int N = 0, K = 0, ldw = 0;  // ldw: the fp32 weight's row stride
  std::vector<float> exact;   // [N, K]
  ps::Nf4Quantized q;
  ps::Nf4Weight nf4;       // device view
  ps::HalfWeight half;     // device view
  const float* f32 = nullptr;
  std::string tag() const {
    return std::string(kind_name(kind)) + " " + std::to_string(N) + "x" + std::to_string(K) +
           (kind == Kind::Nf4 || kind == Kind::Nf4Dq ? " bs" + std::to_string(q.blocksize) : "") +
           (kind == Kind::F32 && ldw != K ? " ldw" + std::to_string(ldw) : "");
  }
};

Weight make_weight(ps::CpuBackend& c, cudatest::DeviceBuffers& dev, Rand& r, Kind kind, int N, int K, int bs = 64,
                   int ldw = 0) {
  Weight w;
  w.kind = kind;
  w.N = N;
  w.K = K;
  w.ldw = ldw > 0 ? ldw : K;
  w.exact.resize(static_cast<size_t>(N) * K);
  if (kind == Kind::Nf4 || kind == Kind::Nf4Dq) {
    const std::vector<float> src = random_vec(w.exact.size(), r, -0.3f, 0.3f);
    w.q = ps::nf4_quantize(src.data(), N, K, bs, kind == Kind::Nf4Dq);
    const ps::Nf4Weight host = w.q.view();
    c.nf4_dequantize(host, w.exact.data());
    w.nf4 = host;
    w.nf4.codes = dev.put(w.q.codes);
    if (w.q.double_quant()) {
      w.nf4.absmax_codes = dev.put(w.q.absmax_codes);
      w.nf4.nested_absmax = dev.put(w.q.nested_absmax);
      w.nf4.absmax_map = dev.put(std::vector<float>(ps::dynamic_map_signed(), ps::dynamic_map_signed() + 256));
    } else {
      w.nf4.absmax = dev.put(w.q.absmax);
    }
  } else if (kind == Kind::Bf16 || kind == Kind::F16) {
    const std::vector<uint16_t> h = random_half(w.exact.size(), kind == Kind::Bf16, r);
    c.half_to_float(h.data(), kind == Kind::Bf16, w.exact.data(), h.size());
    w.half.data = dev.put(h);
    w.half.bf16 = kind == Kind::Bf16;
    w.half.rows = N;
    w.half.cols = K;
  } else {
    std::vector<float> h(static_cast<size_t>(N) * w.ldw, NAN);
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) h[static_cast<size_t>(n) * w.ldw + k] = w.exact[static_cast<size_t>(n) * K + k] =
                                      r.uniform(-0.5f, 0.5f);
    w.f32 = dev.put(h);
  }
  return w;
}

// Y = alpha X W^T + beta Y through the backend's op (the fp32 weight:
// gemm_nt, whose few-row hook takes the GEMV; "the op took the GEMV" below
// compares it with the GEMV entry).
void gemm_nt(CudaBackend& g, const Weight& w, int M, const float* X, int ldx, float alpha, float beta, float* Y,
             int ldy) {
  if (w.kind == Kind::Nf4 || w.kind == Kind::Nf4Dq) g.nf4_gemm_nt(M, X, ldx, w.nf4, alpha, beta, Y, ldy);
  else if (w.kind == Kind::F32) g.gemm_nt(M, w.N, w.K, alpha, X, ldx, w.f32, w.ldw, beta, Y, ldy);
  else g.half_gemm_nt(M, X, ldx, w.half, alpha, beta, Y, ldy);
}

// The GEMV entry itself (what gemm_nt must dispatch to for M <= 8).
void gemv_direct(CudaBackend& g, const Weight& w, int M, const float* X, int ldx, float alpha, float beta, float* Y,
                 int ldy) {
  const bool bf16 = g.gemm_precision() == Precision::Bf16;
  if (w.kind == Kind::Nf4 || w.kind == Kind::Nf4Dq) ps::cuda::gemv_nf4_nt(M, X, ldx, w.nf4, alpha, beta, Y, ldy, bf16);
  else if (w.kind == Kind::F32) ps::cuda::gemv_f32_nt(M, w.N, w.K, alpha, X, ldx, w.f32, w.ldw, beta, Y, ldy, bf16);
  else ps::cuda::gemv_half_nt(M, X, ldx, w.half, alpha, beta, Y, ldy, bf16);
}

template <typename Fn>
std::vector<float> run_reversed(Fn&& fn) {
#ifdef PS_CUDA_SIM
  ps::cudasim::set_reverse_thread_order(!ps::cudasim::reverse_thread_order());
  std::vector<float> out = fn();
  ps::cudasim::set_reverse_thread_order(!ps::cudasim::reverse_thread_order());
  return out;
#else
  return fn();  // on a GPU: simply a second run
#endif
}

// Items 1 and 3: one product against the float64 reference.
void check_gemv(CudaBackend& g, cudatest::DeviceBuffers& dev, Rand& r, const Weight& w, int M, float beta,
                bool determinism) {
  const bool bf16 = g.gemm_precision() == Precision::Bf16;
  const int N = w.N, K = w.K, ldx = K + 3, ldy = N + 5;
  const float alpha = 0.7f;
  std::vector<float> X(static_cast<size_t>(M) * ldx, NAN);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) X[static_cast<size_t>(m) * ldx + k] = r.uniform(-1.0f, 1.0f);
  std::vector<float> Y0(static_cast<size_t>(M) * ldy, NAN);
  if (beta != 0.0f)
    for (auto& v : Y0) v = r.uniform(-1.0f, 1.0f);
  const float* dX = dev.put(X);
  float* dY = dev.put(Y0);
  gemm_nt(g, w, M, dX, ldx, alpha, beta, dY, ldy);
  const std::vector<float> Y = dev.get(dY, Y0.size());

  size_t bad = 0;
  double worst = 0;
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double sum = 0, mag = 0;
      for (int k = 0; k < K; ++k) {
        float xv = X[static_cast<size_t>(m) * ldx + k], wv = w.exact[static_cast<size_t>(n) * K + k];
        if (bf16) xv = ps::round_to_bf16(xv), wv = ps::round_to_bf16(wv);
        const double t = static_cast<double>(xv) * wv;
        sum += t;
        mag += std::fabs(t);
      }
      const size_t at = static_cast<size_t>(m) * ldy + n;
      const double y0 = beta != 0.0f ? Y0[at] : 0.0;
      const double want = alpha * sum + y0;
      // One rounding per fused multiply-add and tree addition (K + 5 in any
      // order), the alpha product and the beta add, 2 ulp each for margin.
      const double limit = 2.0 * (K + 8) * std::ldexp(1.0, -24) * (std::fabs(alpha) * mag + std::fabs(y0)) + 1e-30;
      const double err = std::fabs(Y[at] - want);
      if (!(err <= limit)) ++bad;
      worst = std::isnan(err) ? INFINITY : std::max(worst, err / limit);
    }
    for (int n = N; n < ldy; ++n) {  // the row padding is never written
      const size_t at = static_cast<size_t>(m) * ldy + n;
      if (std::memcmp(&Y[at], &Y0[at], sizeof(float)) != 0) ++bad;
    }
  }
  std::printf("  %-22s %s M=%d beta=%g  worst/limit %.3g  %s\n", w.tag().c_str(), bf16 ? "bf16" : "fp32", M, beta,
              worst, bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__, "GEMV " + w.tag() + " M=" + std::to_string(M) + ": " + std::to_string(bad) +
                                         " elements beyond the fp32-summation bound (or padding written)");
  // The op took the GEMV: the GEMV entry gives the same bits.
  float* dY2 = dev.put(Y0);
  gemv_direct(g, w, M, dX, ldx, alpha, beta, dY2, ldy);
  const std::vector<float> Y2 = dev.get(dY2, Y0.size());
  CHECK(std::memcmp(Y2.data(), Y.data(), Y.size() * sizeof(float)) == 0);
  if (determinism) {
    const std::vector<float> again = run_reversed([&] {
      float* d = dev.put(Y0);
      gemm_nt(g, w, M, dX, ldx, alpha, beta, d, ldy);
      return dev.get(d, Y0.size());
    });
    const bool same = std::memcmp(again.data(), Y.data(), Y.size() * sizeof(float)) == 0;
    std::printf("  %-22s %s M=%d determinism (%s)  %s\n", w.tag().c_str(), bf16 ? "bf16" : "fp32", M,
                kSim ? "reversed thread order" : "second run", same ? "ok" : "FAIL");
    CHECK(same);
  }
}

// Item 2: y[m, n] = W[n, k_m] exactly for one-hot rows x_m = e_{k_m}, every k.
void check_every_value(CudaBackend& g, cudatest::DeviceBuffers& dev, const Weight& w) {
  const bool bf16 = g.gemm_precision() == Precision::Bf16;
  const int N = w.N, K = w.K, M = ps::cuda::kGemvMaxRows;
  size_t bad = 0;
  for (int k0 = 0; k0 < K; k0 += M) {
    const int rows = std::min(M, K - k0);
    std::vector<float> X(static_cast<size_t>(rows) * K, 0.0f);
    for (int m = 0; m < rows; ++m) X[static_cast<size_t>(m) * K + k0 + m] = 1.0f;
    float* dY = dev.put(std::vector<float>(static_cast<size_t>(rows) * N, NAN));
    gemm_nt(g, w, rows, dev.put(X), K, 1.0f, 0.0f, dY, N);
    const std::vector<float> Y = dev.get(dY, static_cast<size_t>(rows) * N);
    for (int m = 0; m < rows; ++m)
      for (int n = 0; n < N; ++n) {
        float want = w.exact[static_cast<size_t>(n) * K + k0 + m];
        if (bf16) want = ps::round_to_bf16(want);
        if (std::memcmp(&Y[static_cast<size_t>(m) * N + n], &want, sizeof(float)) != 0) ++bad;
      }
  }
  std::printf("  %-22s %s every value (one-hot x), %d x %d  %s\n", w.tag().c_str(), bf16 ? "bf16" : "fp32", N, K,
              bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__, w.tag() + ": " + std::to_string(bad) + " dequantized values differ in bits");
}

void test_gemv(CudaBackend& g, ps::CpuBackend& c, Rand& r) {
  std::printf("fused GEMV (M = 1..%d)\n", ps::cuda::kGemvMaxRows);
  cudatest::DeviceBuffers dev(g);
  std::vector<Weight> ws;
  // 19 x 333: odd K (not a multiple of 8, 32 or the blocksize): blocks cross
  // row ends, odd rows start on a low nibble, no row is 16-byte aligned.
  ws.push_back(make_weight(c, dev, r, Kind::Nf4, 19, 333));
  ws.push_back(make_weight(c, dev, r, Kind::Nf4Dq, 19, 333));
  ws.push_back(make_weight(c, dev, r, Kind::Nf4, 13, 1100, 32));   // two slices, blocksize 32
  ws.push_back(make_weight(c, dev, r, Kind::Nf4Dq, 9, 2048, 128));  // aligned rows: the 16-byte loads
  ws.push_back(make_weight(c, dev, r, Kind::Bf16, 19, 333));
  ws.push_back(make_weight(c, dev, r, Kind::Bf16, 10, 1032));  // aligned rows, a slice and a tail
  ws.push_back(make_weight(c, dev, r, Kind::F16, 19, 333));
  ws.push_back(make_weight(c, dev, r, Kind::F16, 10, 2048));
  ws.push_back(make_weight(c, dev, r, Kind::F32, 19, 333, 0, 335));
  ws.push_back(make_weight(c, dev, r, Kind::F32, 11, 1030, 0, 1032));
  for (Precision p : {Precision::Fp32, Precision::Bf16}) {
    if (p == Precision::Bf16 && g.device_info().major < 8) continue;  // no bf16 precision there
    g.set_gemm_precision(p);
    for (size_t i = 0; i < ws.size(); ++i) {
      const Weight& w = ws[i];
      const std::vector<int> Ms = w.K > 1100 ? std::vector<int>{1, 8} : std::vector<int>{1, 2, 3, 5, 8};
      for (int M : Ms)
        for (float beta : {0.0f, 1.0f}) check_gemv(g, dev, r, w, M, beta, M == 3 || (M == 8 && beta == 1.0f));
      if (w.K <= 1100 || !kSim) check_every_value(g, dev, w);
    }
  }
  g.set_gemm_precision(Precision::Fp32);

  // bf16 rounding really happens: (1 + 2^-10) * 1 over K = 8 is 8 in bf16.
  if (g.device_info().major >= 8) {
    g.set_gemm_precision(Precision::Bf16);
    const float* X = dev.put(std::vector<float>(8, 1.0f + 1.0f / 1024.0f));
    const float* W = dev.put(std::vector<float>(8, 1.0f));
    float* Y = dev.put(std::vector<float>(1, NAN));
    ps::cuda::gemv_f32_nt(1, 1, 8, 1.0f, X, 8, W, 8, 0.0f, Y, 1, true);
    const float got = dev.get(Y, 1)[0];
    std::printf("  bf16 GEMV rounds x: (1 + 2^-10) . 1 over K=8 gives %.10g (want 8)\n", got);
    CHECK(got == 8.0f);
    g.set_gemm_precision(Precision::Fp32);
  }
}

// Item 4: the bf16 route without widening == the old widen-then-round route.
void test_bf16_weight_gemm(CudaBackend& g, ps::CpuBackend& c, Rand& r) {
  std::printf("bf16 weight GEMMs: raw-bf16 operand vs widen-then-round (own kernels: bit-identical)\n");
  cudatest::DeviceBuffers dev(g);
  g.set_gemm_precision(Precision::Bf16);
  const size_t default_bound = g.weight_chunk_values();
  struct Case {
    Kind kind;
    int N, K, chunk_rows;  // chunk_rows 0: the default bound (one chunk)
  };
  const std::vector<Case> cases = {{Kind::Bf16, 37, 70, 0},   {Kind::Bf16, 130, 45, 64}, {Kind::F16, 37, 70, 0},
                                   {Kind::F16, 130, 45, 64},  {Kind::Nf4, 37, 70, 0},    {Kind::Nf4Dq, 130, 45, 64},
                                   {Kind::Nf4Dq, 9, 300, 0}};
  for (const Case& cs : cases) {
    const Weight w = make_weight(c, dev, r, cs.kind, cs.N, cs.K);
    g.set_weight_chunk_values(cs.chunk_rows ? static_cast<size_t>(cs.chunk_rows) * cs.K : default_bound);
    for (int M : {3, 9, 130}) {
      for (bool nt : {true, false}) {
        const int in_cols = nt ? w.K : w.N, out_cols = nt ? w.N : w.K;
        const int ld_in = in_cols + 1, ld_out = out_cols + 2;
        std::vector<float> in(static_cast<size_t>(M) * ld_in, NAN);
        for (int m = 0; m < M; ++m)
          for (int k = 0; k < in_cols; ++k) in[static_cast<size_t>(m) * ld_in + k] = r.uniform(-1.0f, 1.0f);
        const std::vector<float> out0 = random_vec(static_cast<size_t>(M) * ld_out, r);
        const float* din = dev.put(in);
        std::vector<float> got[2];
        for (int old = 0; old < 2; ++old) {
          // The GEMV stays out of it: the chunked routes are compared.
          g.set_weight_gemm_paths(false, old == 0);
          float* dout = dev.put(out0);
          const bool q4 = w.kind == Kind::Nf4 || w.kind == Kind::Nf4Dq;
          if (nt && q4) g.nf4_gemm_nt(M, din, ld_in, w.nf4, 0.9f, 1.0f, dout, ld_out);
          if (nt && !q4) g.half_gemm_nt(M, din, ld_in, w.half, 0.9f, 1.0f, dout, ld_out);
          if (!nt && q4) g.nf4_gemm_nn(M, din, ld_in, w.nf4, 0.9f, 1.0f, dout, ld_out);
          if (!nt && !q4) g.half_gemm_nn(M, din, ld_in, w.half, 0.9f, 1.0f, dout, ld_out);
          got[old] = dev.get(dout, out0.size());
        }
        g.set_weight_gemm_paths(true, true);
        const bool same = std::memcmp(got[0].data(), got[1].data(), got[0].size() * sizeof(float)) == 0;
        // And the new route against the float64 reference of the bf16 operands.
        size_t bad = 0;
        double worst = 0;
        for (int m = 0; m < M; ++m)
          for (int j = 0; j < out_cols; ++j) {
            double sum = 0, mag = 0;
            for (int p = 0; p < in_cols; ++p) {
              const float wv = nt ? w.exact[static_cast<size_t>(j) * w.K + p] : w.exact[static_cast<size_t>(p) * w.K + j];
              const double t = static_cast<double>(ps::round_to_bf16(in[static_cast<size_t>(m) * ld_in + p])) *
                               ps::round_to_bf16(wv);
              sum += t;
              mag += std::fabs(t);
            }
            const size_t at = static_cast<size_t>(m) * ld_out + j;
            const double want = 0.9 * sum + out0[at];
            const double limit = 2.0 * (in_cols + 8) * std::ldexp(1.0, -24) * (0.9 * mag + std::fabs(out0[at]));
            const double err = std::fabs(got[0][at] - want);
            if (!(err <= limit)) ++bad;
            worst = std::isnan(err) ? INFINITY : std::max(worst, err / limit);
          }
        const bool lt = g.gemm_uses_cublaslt();
        std::printf("  %-18s %s M=%-3d chunks of %-4s  new == old: %s  worst/limit %.3g  %s\n", w.tag().c_str(),
                    nt ? "nt" : "nn", M, cs.chunk_rows ? std::to_string(cs.chunk_rows).c_str() : "all",
                    lt ? "(cuBLASLt: not required)" : (same ? "bit-identical" : "DIFFERENT"), worst,
                    (bad || (!same && !lt)) ? "FAIL" : "ok");
        if (!lt) CHECK(same);
        CHECK(bad == 0);
      }
    }
  }
  g.set_weight_chunk_values(default_bound);
  g.set_gemm_precision(Precision::Fp32);
}

// Item 5: the decode product of a Llama-3.2-1B MLP weight (gate/up: 8192 x 2048).
void time_gemv(CudaBackend& g, ps::CpuBackend& c, Rand& r) {
  std::printf("timing: 8192 x 2048 weight, fused GEMV vs chunked (%s)\n", g.gemm_description().c_str());
  cudatest::DeviceBuffers dev(g);
  const int N = 8192, K = 2048;
  const Weight w4 = make_weight(c, dev, r, Kind::Nf4Dq, N, K);
  const Weight w16 = make_weight(c, dev, r, Kind::Bf16, N, K);
  // Narrow weights (the k/v projections of Llama-3.2-1B and 3.1-8B): few
  // output rows, so few blocks unless K is split (not yet): the first GPU
  // run says whether they reach the bandwidth of the wide one.
  const Weight kv1b = make_weight(c, dev, r, Kind::Nf4Dq, 512, 2048);
  const Weight kv8b = make_weight(c, dev, r, Kind::Nf4Dq, 1024, 4096);
  auto time_us = [&](auto&& fn) {
    fn();
    g.synchronize();
    const int reps = 50;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) fn();
    g.synchronize();
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  for (Precision p : {Precision::Fp32, Precision::Bf16}) {
    if (p == Precision::Bf16 && g.device_info().major < 8) continue;
    g.set_gemm_precision(p);
    for (const Weight* w : {&w4, &w16, &kv1b, &kv8b}) {
      const double wn = w->N, wk = w->K;
      const double bytes = w->kind == Kind::Bf16 ? 2.0 * wn * wk : wn * (wk / 2.0) + wn * (wk / 64.0);
      for (int M : {1, 8}) {
        const float* X = dev.put(random_vec(static_cast<size_t>(M) * w->K, r));
        float* Y = dev.put(std::vector<float>(static_cast<size_t>(M) * w->N));
        double us[2];
        for (int fused = 1; fused >= 0; --fused) {
          g.set_weight_gemm_paths(fused == 1, true);
          us[fused] = time_us([&] { gemm_nt(g, *w, M, X, w->K, 1.0f, 0.0f, Y, w->N); });
        }
        g.set_weight_gemm_paths(true, true);
        std::printf("  %5dx%-5d %-6s %s M=%d: fused %.1f us (%.0f GB/s of weight, %.0f calls/s), chunked %.1f us: %.1fx\n",
                    w->N, w->K, kind_name(w->kind), p == Precision::Bf16 ? "bf16" : "fp32", M, us[1], bytes / us[1] / 1e3,
                    1e6 / us[1], us[0], us[0] / us[1]);
      }
    }
  }
  // Item 2 at a training shape (one 2048-token sequence): bf16 precision,
  // the weight read as bf16 (in place / bf16 chunks) against widened to fp32
  // chunks and rounded by the GEMM.
  if (g.device_info().major >= 8) {
    g.set_gemm_precision(Precision::Bf16);
    const int M = 2048;
    const float* X = dev.put(random_vec(static_cast<size_t>(M) * K, r));
    const float* dY = dev.put(random_vec(static_cast<size_t>(M) * N, r));
    float* Y = dev.put(std::vector<float>(static_cast<size_t>(M) * N));
    float* dX = dev.put(std::vector<float>(static_cast<size_t>(M) * K));
    for (const Weight* w : {&w4, &w16}) {
      const bool q4 = w == &w4;
      double us[2][2];  // [direct][nt]
      for (int direct = 1; direct >= 0; --direct) {
        g.set_weight_gemm_paths(true, direct == 1);
        us[direct][1] = time_us([&] {
          if (q4) g.nf4_gemm_nt(M, X, K, w->nf4, 1.0f, 0.0f, Y, N);
          else g.half_gemm_nt(M, X, K, w->half, 1.0f, 0.0f, Y, N);
        });
        us[direct][0] = time_us([&] {
          if (q4) g.nf4_gemm_nn(M, dY, N, w->nf4, 1.0f, 0.0f, dX, K);
          else g.half_gemm_nn(M, dY, N, w->half, 1.0f, 0.0f, dX, K);
        });
      }
      g.set_weight_gemm_paths(true, true);
      const double flop = 2.0 * M * N * K;
      std::printf("  %-6s bf16 M=%d: nt %.0f us (%.0f TFLOP/s) vs widen-then-round %.0f us; nn %.0f us (%.0f TFLOP/s) "
                  "vs %.0f us\n",
                  kind_name(w->kind), M, us[1][1], flop / us[1][1] / 1e6, us[0][1], us[1][0], flop / us[1][0] / 1e6,
                  us[0][0]);
    }
  }
  g.set_gemm_precision(Precision::Fp32);
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_weight_gemv: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    ps::CpuBackend c(1);
    Rand r(20261129);
    {
      // Bit-identity of the bf16 routes holds for the own kernels: this
      // backend never loads cuBLASLt.
      const char* prev = std::getenv("PEFT_STUDIO_GEMM");
      const std::string saved = prev ? prev : "";
      setenv("PEFT_STUDIO_GEMM", "own", 1);
      CudaBackend own(0);
      if (prev) setenv("PEFT_STUDIO_GEMM", saved.c_str(), 1);
      else unsetenv("PEFT_STUDIO_GEMM");
      const ps::CudaDeviceInfo info = own.refreshed_info();
      std::printf("device: %s (compute capability %d.%d)\n", info.name.c_str(), info.major, info.minor);
      test_gemv(own, c, r);
      if (info.major >= 8) test_bf16_weight_gemm(own, c, r);
      else std::printf("bf16 precision needs compute capability 8.0: only the fp32 GEMV was checked\n");
      own.synchronize();
    }
    if (!kSim) {
      CudaBackend g(0);
      if (g.gemm_uses_cublaslt() && g.device_info().major >= 8) {
        std::printf("with %s:\n", g.gemm_description().c_str());
        test_bf16_weight_gemm(g, c, r);
      }
      const char* timing = std::getenv("PS_CUDA_PARITY_TIMING");
      if (timing && std::string(timing) == "1") time_gemv(g, c, r);
      g.synchronize();
    }
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_weight_gemv");
}
