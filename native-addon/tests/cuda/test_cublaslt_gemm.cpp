// The CUDA backend's GEMMs through cuBLASLt (core/backend/cuda/cublaslt/)
// against the backend's own tiled kernel, the CPU backend and a float64
// reference on the host, on odd shapes, padded row strides and offset
// (badly aligned) sub-matrix pointers. Exits 77 (CTest: skipped) without a
// CUDA device, or without cuBLASLt unless PEFT_STUDIO_REQUIRE_CUBLASLT=1
// (then its absence fails, with the loader's message).
//
// Tolerances, per element (i, j), with S = sum_p |op(A)[i,p] op(B)[p,j]| and
// u = 2^-24 (fp32 unit roundoff):
//   any fp32 GEMM vs the float64 result:  |got - exact| <= K u S + u |beta c|
//     (the worst-case bound of a K-term fp32 sum, whatever its order or
//     split; TF32 inputs, rounded to 2^-11, would break it by orders of
//     magnitude on the small-K shapes, so this also shows cuBLASLt runs
//     plain fp32);
//   two fp32 GEMMs against each other (cuBLASLt vs own kernel, vs CPU):
//     twice that bound;
//   bf16 inputs (cuBLASLt bf16 x bf16 -> fp32): against the float64 product
//     of the bf16-rounded inputs, the same fp32 bound (the inputs are exact);
//     against the fp32 GEMM of the unrounded inputs, 2^-8 S + the fp32 bound
//     (each bf16 input carries a relative error up to 2^-9).
// Every comparison prints its worst error / bound ratio.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "check.h"
#include "device_buffers.h"
#include "error.h"
#include "op_test_util.h"

using ps::CpuBackend;
using ps::CudaBackend;
using optest::Rand;
using optest::random_vec;

namespace {

constexpr double kU = 1.0 / 16777216.0;  // 2^-24

enum class Op { NT, NN, TN };
const char* op_name(Op op) { return op == Op::NT ? "nt" : op == Op::NN ? "nn" : "tn"; }

// One problem: storage sizes follow the op (row-major, strides >= widths).
struct Problem {
  Op op;
  int M, N, K;
  int pad;     // extra elements per row of A, B and C
  int offset;  // elements between each buffer's start and the matrix (misaligns it)
  bool a_trans() const { return op == Op::TN; }
  bool b_trans() const { return op == Op::NT; }
  int lda() const { return (a_trans() ? M : K) + pad; }
  int ldb() const { return (b_trans() ? K : N) + pad; }
  int ldc() const { return N + pad; }
  size_t a_size() const { return size_t(offset) + size_t(a_trans() ? K : M) * lda(); }
  size_t b_size() const { return size_t(offset) + size_t(b_trans() ? N : K) * ldb(); }
  size_t c_size() const { return size_t(offset) + size_t(M) * ldc(); }
  std::string name() const {
    return std::string("gemm_") + op_name(op) + " M" + std::to_string(M) + " N" + std::to_string(N) + " K" +
           std::to_string(K) + (pad ? " pad" + std::to_string(pad) : "") +
           (offset ? " offset" + std::to_string(offset) : "");
  }
  float a(const std::vector<float>& A, int i, int p) const {
    return a_trans() ? A[offset + size_t(p) * lda() + i] : A[offset + size_t(i) * lda() + p];
  }
  float b(const std::vector<float>& B, int p, int j) const {
    return b_trans() ? B[offset + size_t(j) * ldb() + p] : B[offset + size_t(p) * ldb() + j];
  }
};

// Exact result (float64), the per-element bound K u S + u |beta c| and
// |alpha| S (S = sum_p |a b|) when `scale` is given.
void reference(const Problem& pr, const std::vector<float>& A, const std::vector<float>& B, float alpha, float beta,
               const std::vector<float>& C0, std::vector<double>* exact, std::vector<double>* bound,
               std::vector<double>* scale = nullptr) {
  exact->assign(size_t(pr.M) * pr.N, 0.0);
  bound->assign(size_t(pr.M) * pr.N, 0.0);
  if (scale) scale->assign(size_t(pr.M) * pr.N, 0.0);
  for (int i = 0; i < pr.M; ++i)
    for (int j = 0; j < pr.N; ++j) {
      double sum = 0, abs_sum = 0;
      for (int p = 0; p < pr.K; ++p) {
        const double t = double(pr.a(A, i, p)) * pr.b(B, p, j);
        sum += t;
        abs_sum += std::fabs(t);
      }
      const double c = beta != 0.0f ? double(C0[pr.offset + size_t(i) * pr.ldc() + j]) : 0.0;
      (*exact)[size_t(i) * pr.N + j] = alpha * sum + beta * c;
      // alpha's own rounding and the final add: a few more u of the result.
      (*bound)[size_t(i) * pr.N + j] =
          (pr.K + 2) * kU * std::fabs(alpha) * abs_sum + 2 * kU * std::fabs(beta * c) + 1e-30;
      if (scale) (*scale)[size_t(i) * pr.N + j] = std::fabs(alpha) * abs_sum;
    }
}

// got (the C buffer) against want (M x N) element by element: err <= scale * bound.
void compare(const std::string& what, const Problem& pr, const std::vector<float>& got,
             const std::function<double(size_t)>& want, const std::vector<double>& bound, double scale) {
  double worst = 0;
  size_t bad = 0, worst_at = 0;
  for (int i = 0; i < pr.M; ++i)
    for (int j = 0; j < pr.N; ++j) {
      const size_t e = size_t(i) * pr.N + j;
      const double g = got[pr.offset + size_t(i) * pr.ldc() + j];
      const double ratio = std::fabs(g - want(e)) / (scale * bound[e]);
      if (!(ratio <= 1.0)) ++bad;  // NaN counts as bad
      if (!(ratio <= worst)) {
        worst = std::isnan(ratio) ? std::numeric_limits<double>::infinity() : ratio;
        worst_at = e;
      }
    }
  std::printf("  %-58s worst err/bound %.3g%s\n", what.c_str(), worst, bad ? "  FAIL" : "");
  if (bad)
    pstest::fail(__FILE__, __LINE__,
                 what + ": " + std::to_string(bad) + " element(s) beyond the bound, worst at (" +
                     std::to_string(worst_at / pr.N) + ", " + std::to_string(worst_at % pr.N) + ")");
}

using Dev = cudatest::DeviceBuffers;

void run_op(ps::Backend& be, const Problem& pr, float alpha, const float* A, const float* B, float beta, float* C) {
  const float* a = A + pr.offset;
  const float* b = B + pr.offset;
  float* c = C + pr.offset;
  switch (pr.op) {
    case Op::NT: be.gemm_nt(pr.M, pr.N, pr.K, alpha, a, pr.lda(), b, pr.ldb(), beta, c, pr.ldc()); break;
    case Op::NN: be.gemm_nn(pr.M, pr.N, pr.K, alpha, a, pr.lda(), b, pr.ldb(), beta, c, pr.ldc()); break;
    case Op::TN: be.gemm_tn(pr.M, pr.N, pr.K, alpha, a, pr.lda(), b, pr.ldb(), beta, c, pr.ldc()); break;
  }
}

std::vector<Problem> problems() {
  std::vector<Problem> ps;
  const int shapes[][3] = {{1, 1, 1},     {3, 5, 7},       {17, 33, 65},   {64, 64, 64},
                           {127, 255, 129}, {1, 2048, 1000}, {513, 77, 1031}, {5, 7, 4099}};
  for (Op op : {Op::NT, Op::NN, Op::TN}) {
    for (const auto& s : shapes) ps.push_back({op, s[0], s[1], s[2], 0, 0});
    ps.push_back({op, 45, 67, 89, 3, 0});   // padded rows: odd strides
    ps.push_back({op, 64, 96, 128, 0, 1});  // 4-byte aligned pointers
    ps.push_back({op, 33, 40, 56, 8, 5});   // both
  }
  return ps;
}

void test_fp32(CudaBackend& lt, CudaBackend& own, CpuBackend& cpu, Rand& r) {
  std::printf("fp32: cuBLASLt vs own kernel vs CPU vs float64\n");
  for (const Problem& pr : problems()) {
    for (float beta : {0.0f, 1.0f}) {
      const float alpha = 0.7f;
      const std::vector<float> A = random_vec(pr.a_size(), r), B = random_vec(pr.b_size(), r);
      std::vector<float> C0 = random_vec(pr.c_size(), r);
      // beta 0 must not read C: NaN there would show in the result.
      if (beta == 0.0f) C0.assign(C0.size(), std::numeric_limits<float>::quiet_NaN());
      std::vector<double> exact, bound;
      reference(pr, A, B, alpha, beta, C0, &exact, &bound);

      Dev dl(lt), dn(own);
      float* lC = dl.put(C0);
      run_op(lt, pr, alpha, dl.put(A), dl.put(B), beta, lC);
      const std::vector<float> got_lt = dl.get(lC, C0.size());
      float* nC = dn.put(C0);
      run_op(own, pr, alpha, dn.put(A), dn.put(B), beta, nC);
      const std::vector<float> got_own = dn.get(nC, C0.size());
      std::vector<float> got_cpu = C0;
      run_op(cpu, pr, alpha, A.data(), B.data(), beta, got_cpu.data());

      const std::string tag = pr.name() + " beta" + std::to_string(int(beta));
      auto ex = [&](size_t e) { return exact[e]; };
      auto at = [&](const std::vector<float>& v) {
        return [&v, &pr](size_t e) { return double(v[pr.offset + (e / pr.N) * pr.ldc() + e % pr.N]); };
      };
      compare("cuBLASLt vs float64 " + tag, pr, got_lt, ex, bound, 1.0);
      compare("own vs float64 " + tag, pr, got_own, ex, bound, 1.0);
      compare("cuBLASLt vs own " + tag, pr, got_lt, at(got_own), bound, 2.0);
      compare("cuBLASLt vs CPU " + tag, pr, got_lt, at(got_cpu), bound, 2.0);
      // Outside the matrix (padding, the offset prefix) nothing changes.
      size_t touched = 0;
      for (size_t e = 0; e < C0.size(); ++e) {
        const bool inside = e >= size_t(pr.offset) && (e - pr.offset) % pr.ldc() < size_t(pr.N);
        if (!inside && std::memcmp(&got_lt[e], &C0[e], sizeof(float)) != 0) ++touched;
      }
      if (touched) pstest::fail(__FILE__, __LINE__, tag + ": cuBLASLt wrote outside the matrix");
    }
  }
}

uint16_t to_bf16(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void test_bf16(CudaBackend& lt, Rand& r) {
  std::printf("bf16 inputs, fp32 accumulation (cuBLASLt)\n");
  for (const Problem& base : problems()) {
    Problem pr = base;
    // 16-byte aligned rows and pointers must work; the odd cases are tried
    // and reported (cuBLASLt may lack a kernel for 2-byte alignment).
    const bool aligned = pr.offset == 0 && pr.pad == 0 && pr.lda() % 8 == 0 && pr.ldb() % 8 == 0;
    const float alpha = 1.0f, beta = 1.0f;
    const std::vector<float> A = random_vec(pr.a_size(), r), B = random_vec(pr.b_size(), r);
    const std::vector<float> C0 = random_vec(pr.c_size(), r);
    std::vector<uint16_t> A16(A.size()), B16(B.size());
    std::vector<float> Ar(A.size()), Br(B.size());  // the bf16 values as floats
    for (size_t i = 0; i < A.size(); ++i) Ar[i] = from_bf16(A16[i] = to_bf16(A[i]));
    for (size_t i = 0; i < B.size(); ++i) Br[i] = from_bf16(B16[i] = to_bf16(B[i]));
    std::vector<double> exact_r, bound_r, exact, bound, s;
    reference(pr, Ar, Br, alpha, beta, C0, &exact_r, &bound_r);
    reference(pr, A, B, alpha, beta, C0, &exact, &bound, &s);

    Dev d(lt);
    float* C = d.put(C0);
    const uint16_t* dA = d.put(A16);
    const uint16_t* dB = d.put(B16);
    try {
      lt.gemm_bf16_cublaslt(pr.a_trans(), pr.b_trans(), pr.M, pr.N, pr.K, alpha, dA + pr.offset, pr.lda(),
                            dB + pr.offset, pr.ldb(), beta, C + pr.offset, pr.ldc());
    } catch (const ps::Error& e) {
      if (aligned) {
        pstest::fail(__FILE__, __LINE__, pr.name() + " bf16: " + e.what());
      } else {
        std::printf("  %-58s not run: %s\n", (pr.name() + " bf16").c_str(), e.what());
      }
      continue;
    }
    const std::vector<float> got = d.get(C, C0.size());
    compare("bf16 vs float64 of the bf16 inputs " + pr.name(), pr, got, [&](size_t e) { return exact_r[e]; },
            bound_r, 1.0);
    // Against fp32 data: each product a_r b_r = a (1 + d1) b (1 + d2) with
    // |d| <= 2^-9, so the rounding of both inputs adds up to (2^-8 + 2^-18) S.
    std::vector<double> wide(bound.size());
    for (size_t e = 0; e < bound.size(); ++e) wide[e] = bound[e] + 1.01 * std::ldexp(1.0, -8) * s[e];
    compare("bf16 vs float64 of the fp32 inputs " + pr.name(), pr, got, [&](size_t e) { return exact[e]; }, wide,
            1.0);
  }
}

void test_bits_and_edges(CudaBackend& lt, Rand& r) {
  std::printf("determinism and edge cases\n");
  const int M = 300, N = 200, K = 500;
  const std::vector<float> A = random_vec(size_t(M) * K, r), B = random_vec(size_t(N) * K, r);
  Dev d(lt);
  const float* dA = d.put(A);
  const float* dB = d.put(B);
  float* C1 = d.put(std::vector<float>(size_t(M) * N, 0.0f));
  float* C2 = d.put(std::vector<float>(size_t(M) * N, 0.0f));
  lt.gemm_nt(M, N, K, 1.0f, dA, K, dB, K, 0.0f, C1, N);
  lt.gemm_nt(M, N, K, 1.0f, dA, K, dB, K, 0.0f, C2, N);
  const std::vector<float> h1 = d.get(C1, size_t(M) * N), h2 = d.get(C2, size_t(M) * N);
  CHECK(std::memcmp(h1.data(), h2.data(), h1.size() * sizeof(float)) == 0);
  // K = 0 and alpha = 0 with beta 0: C becomes zeros (the own kernel's path).
  float* Z = d.put(std::vector<float>(size_t(M) * N, 5.0f));
  lt.gemm_nn(M, N, 0, 1.0f, dA, 1, dB, N, 0.0f, Z, N);
  std::vector<float> hz = d.get(Z, size_t(M) * N);
  CHECK(hz[0] == 0.0f && hz.back() == 0.0f);
  lt.upload(Z, std::vector<float>(size_t(M) * N, 5.0f).data(), size_t(M) * N * sizeof(float));
  lt.gemm_nt(M, N, K, 0.0f, dA, K, dB, K, 0.0f, Z, N);
  hz = d.get(Z, size_t(M) * N);
  CHECK(hz[0] == 0.0f && hz.back() == 0.0f);
  // Argument errors still come from the backend's own checks.
  bool threw = false;
  try {
    lt.gemm_nt(2, 2, 2, 1.0f, dA, 2, dB, 2, 0.5f, C1, 2);
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("beta must be 0 or 1") != std::string::npos;
  }
  CHECK(threw);
}

double time_ms(CudaBackend& be, const std::function<void()>& f) {
  f();  // warm-up (plans, heuristics)
  be.synchronize();
  const int reps = 5;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  be.synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
}

// Informational: the speed this is for.
void timing(CudaBackend& lt, CudaBackend& own, Rand& r) {
  std::printf("timing (fp32; informational)\n");
  const int shapes[][3] = {{2048, 2048, 2048}, {4096, 2048, 8192}, {4096, 8192, 2048}};
  for (const auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    for (CudaBackend* be : {&lt, &own}) {
      Dev d(*be);
      const float* A = d.put(random_vec(size_t(M) * K, r));
      const float* B = d.put(random_vec(size_t(N) * K, r));
      float* C = d.put(std::vector<float>(size_t(M) * N));
      const double ms = time_ms(*be, [&] { be->gemm_nt(M, N, K, 1.0f, A, K, B, K, 0.0f, C, N); });
      std::printf("  gemm_nt %dx%dx%d %-9s %8.2f ms %8.0f GFLOP/s\n", M, N, K, be == &lt ? "cuBLASLt" : "own",
                  ms, 2.0 * M * N * K / ms / 1e6);
    }
  }
  {
    const int M = 4096, N = 2048, K = 2048;
    Dev d(lt);
    std::vector<uint16_t> a(size_t(M) * K), b(size_t(N) * K);
    for (auto& x : a) x = to_bf16(r.uniform(-1, 1));
    for (auto& x : b) x = to_bf16(r.uniform(-1, 1));
    const uint16_t* A = d.put(a);
    const uint16_t* B = d.put(b);
    float* C = d.put(std::vector<float>(size_t(M) * N));
    const double ms =
        time_ms(lt, [&] { lt.gemm_bf16_cublaslt(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N); });
    std::printf("  gemm_nt %dx%dx%d bf16->fp32 %8.2f ms %8.0f GFLOP/s\n", M, N, K, ms, 2.0 * M * N * K / ms / 1e6);
  }
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_cublaslt_gemm: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  const char* require = std::getenv("PEFT_STUDIO_REQUIRE_CUBLASLT");
  try {
    // The choice is made per backend by its constructor, from PEFT_STUDIO_GEMM:
    // a bad value fails there, before any work.
    setenv("PEFT_STUDIO_GEMM", "own", 1);
    CudaBackend own(0);
    std::printf("own backend: %s\n", own.gemm_description().c_str());
    CHECK(!own.gemm_uses_cublaslt());
    setenv("PEFT_STUDIO_GEMM", "bogus", 1);
    bool threw = false;
    try {
      CudaBackend bad(0);
    } catch (const ps::Error& e) {
      threw = std::string(e.what()).find("PEFT_STUDIO_GEMM=bogus is not a GEMM choice") != std::string::npos;
    }
    CHECK(threw);
    unsetenv("PEFT_STUDIO_GEMM");
    CudaBackend lt(0);
    std::printf("backend: %s\nGEMM: %s\n", lt.describe().c_str(), lt.gemm_description().c_str());
    if (!lt.gemm_uses_cublaslt()) {
      if (require && std::string(require) == "1") {
        pstest::fail(__FILE__, __LINE__, "PEFT_STUDIO_REQUIRE_CUBLASLT=1 but " + lt.gemm_description());
        return pstest::finish("test_cublaslt_gemm");
      }
      std::printf("test_cublaslt_gemm: SKIPPED: cuBLASLt is not in use\n");
      return 77;
    }
    CpuBackend cpu(2);
    Rand r(20261129);
    test_fp32(lt, own, cpu, r);
    test_bf16(lt, r);
    test_bits_and_edges(lt, r);
    lt.synchronize();
    const char* t = std::getenv("PS_CUDA_PARITY_TIMING");
    if (t && std::string(t) == "1") {
      try {
        timing(lt, own, r);
      } catch (const ps::Error& e) {
        std::printf("timing aborted: %s\n", e.what());
      }
    }
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  return pstest::finish("test_cublaslt_gemm");
}
