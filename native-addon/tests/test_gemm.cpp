// CPU GEMM and fused LoRA op against float64 references.
//
// Every product is checked element by element against a double-precision
// reference with the rigorous fp32 dot-product error bound
//   |got - want| <= (K + 4) * eps * (|alpha| * sum_p |a_ip b_pj| + |C0_ij|),
// which a wrong index, a dropped k-block or a missed edge tile exceeds by
// orders of magnitude. Both kernel sets (AVX2 when the CPU has it, and the
// portable one) and several thread counts are run; the GEMM promises results
// that are bit-identical for any thread count, and that is asserted too.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"

using ps::CpuBackend;

namespace {

enum class Layout { NT, NN, TN };
const char* layout_name(Layout l) { return l == Layout::NT ? "nt" : l == Layout::NN ? "nn" : "tn"; }

std::vector<float> random_vec(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Problem {
  Layout layout;
  int M, N, K;
  int lda, ldb, ldc;
  float alpha, beta;
  std::vector<float> A, B, C0;
};

// Element (i, p) of op(A) and (p, j) of op(B) for a layout.
float op_a(const Problem& P, int i, int p) {
  return P.layout == Layout::TN ? P.A[(size_t)p * P.lda + i] : P.A[(size_t)i * P.lda + p];
}
float op_b(const Problem& P, int p, int j) {
  return P.layout == Layout::NT ? P.B[(size_t)j * P.ldb + p] : P.B[(size_t)p * P.ldb + j];
}

constexpr float kSentinel = 12345.0f;  // fills C's padding columns, must survive

Problem make_problem(Layout layout, int M, int N, int K, int pad, float alpha, float beta,
                     std::mt19937& rng) {
  Problem P{layout, M, N, K, 0, 0, 0, alpha, beta, {}, {}, {}};
  const int a_rows = layout == Layout::TN ? K : M, a_cols = layout == Layout::TN ? M : K;
  const int b_rows = layout == Layout::NT ? N : K, b_cols = layout == Layout::NT ? K : N;
  P.lda = a_cols + pad;
  P.ldb = b_cols + pad;
  P.ldc = N + pad;
  P.A = random_vec((size_t)a_rows * P.lda + 1, rng);
  P.B = random_vec((size_t)b_rows * P.ldb + 1, rng);
  P.C0.assign((size_t)M * P.ldc + 1, kSentinel);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j)
      P.C0[(size_t)i * P.ldc + j] =
          beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : std::uniform_real_distribution<float>(-1, 1)(rng);
  return P;
}

void run_gemm(CpuBackend& be, const Problem& P, float* C) {
  switch (P.layout) {
    case Layout::NT:
      be.gemm_nt(P.M, P.N, P.K, P.alpha, P.A.data(), P.lda, P.B.data(), P.ldb, P.beta, C, P.ldc);
      break;
    case Layout::NN:
      be.gemm_nn(P.M, P.N, P.K, P.alpha, P.A.data(), P.lda, P.B.data(), P.ldb, P.beta, C, P.ldc);
      break;
    case Layout::TN:
      be.gemm_tn(P.M, P.N, P.K, P.alpha, P.A.data(), P.lda, P.B.data(), P.ldb, P.beta, C, P.ldc);
      break;
  }
}

// Checks C against the float64 reference; returns the number of bad elements.
int check_against_reference(const Problem& P, const std::vector<float>& C, const std::string& what) {
  const double eps = std::numeric_limits<float>::epsilon();
  int bad = 0;
  for (int i = 0; i < P.M; ++i) {
    for (int j = 0; j < P.N; ++j) {
      double dot = 0.0, mag = 0.0;
      for (int p = 0; p < P.K; ++p) {
        const double t = (double)op_a(P, i, p) * op_b(P, p, j);
        dot += t;
        mag += std::fabs(t);
      }
      const double c0 = P.beta == 0.0f ? 0.0 : P.C0[(size_t)i * P.ldc + j];
      const double want = P.alpha * dot + c0;
      const double tol = (P.K + 4) * eps * (std::fabs(P.alpha) * mag + std::fabs(c0)) + 1e-30;
      const double got = C[(size_t)i * P.ldc + j];
      if (!(std::fabs(got - want) <= tol)) {
        if (bad < 3)
          pstest::fail(__FILE__, __LINE__,
                       what + " C[" + std::to_string(i) + "," + std::to_string(j) + "] = " +
                           std::to_string(got) + ", want " + std::to_string(want) +
                           " (tol " + std::to_string(tol) + ")");
        ++bad;
      }
    }
    for (int j = P.N; j < P.ldc; ++j)
      if (C[(size_t)i * P.ldc + j] != kSentinel) {
        if (bad < 3) pstest::fail(__FILE__, __LINE__, what + " wrote past column N");
        ++bad;
      }
  }
  if (C.back() != kSentinel) {
    pstest::fail(__FILE__, __LINE__, what + " wrote past the end of C");
    ++bad;
  }
  return bad;
}

struct Shape {
  int M, N, K, pad;
};

void test_gemm_shapes(std::vector<std::unique_ptr<CpuBackend>>& backends) {
  const Shape shapes[] = {
      {1, 1, 1, 0},      {7, 13, 5, 0},     {7, 13, 5, 3},    {129, 67, 300, 0},
      {129, 67, 300, 5}, {1, 100, 37, 0},   {1, 1000, 600, 2}, {2, 1000, 600, 0},
      {60, 1, 70, 0},    {60, 1, 70, 4},    {6, 16, 8, 0},    {12, 32, 400, 0},
      {500, 530, 400, 1}, {37, 8, 513, 0},  {3, 5, 1, 0},     {300, 300, 1, 0},
  };
  std::mt19937 rng(1234);
  int checked = 0;
  for (Layout layout : {Layout::NT, Layout::NN, Layout::TN}) {
    for (const Shape& s : shapes) {
      for (float beta : {0.0f, 1.0f}) {
        const float alpha = beta == 0.0f ? 1.0f : -0.75f;
        Problem P = make_problem(layout, s.M, s.N, s.K, s.pad, alpha, beta, rng);
        std::vector<float> first[2];  // first result per kernel set (portable, avx2)
        for (size_t b = 0; b < backends.size(); ++b) {
          std::vector<float> C = P.C0;
          run_gemm(*backends[b], P, C.data());
          const std::string what = std::string("gemm_") + layout_name(layout) + " " +
                                   std::to_string(s.M) + "x" + std::to_string(s.N) + "x" +
                                   std::to_string(s.K) + " pad " + std::to_string(s.pad) +
                                   " beta " + std::to_string((int)beta) + " on " +
                                   backends[b]->describe();
          check_against_reference(P, C, what);
          ++checked;
          // Same kernel set, different thread counts: bit-identical.
          std::vector<float>& ref = first[backends[b]->use_avx2() ? 1 : 0];
          if (ref.empty())
            ref = C;
          else if (std::memcmp(ref.data(), C.data(), C.size() * sizeof(float)) != 0)
            pstest::fail(__FILE__, __LINE__, what + " differs from the same kernels on fewer threads");
          // Same backend twice: bit-identical.
          std::vector<float> again = P.C0;
          run_gemm(*backends[b], P, again.data());
          if (std::memcmp(again.data(), C.data(), C.size() * sizeof(float)) != 0)
            pstest::fail(__FILE__, __LINE__, what + " is not repeatable");
        }
      }
    }
  }
  std::printf("  %d GEMM results checked against float64\n", checked);
}

// K = 0 and alpha = 0 leave beta*C; M or N = 0 touch nothing.
void test_degenerate(CpuBackend& be) {
  std::vector<float> C(12, 3.0f);
  std::vector<float> A(12, std::numeric_limits<float>::quiet_NaN()), B = A;
  be.gemm_nt(3, 4, 0, 1.0f, A.data(), 1, B.data(), 1, 1.0f, C.data(), 4);
  for (float c : C) CHECK(c == 3.0f);
  be.gemm_nn(3, 4, 0, 1.0f, A.data(), 1, B.data(), 4, 0.0f, C.data(), 4);
  for (float c : C) CHECK(c == 0.0f);
  std::fill(C.begin(), C.end(), 2.0f);
  be.gemm_tn(3, 4, 2, 0.0f, A.data(), 3, B.data(), 4, 1.0f, C.data(), 4);  // alpha 0: A, B unread
  for (float c : C) CHECK(c == 2.0f);
  be.gemm_nt(0, 4, 5, 1.0f, A.data(), 5, B.data(), 5, 0.0f, C.data(), 4);
  for (float c : C) CHECK(c == 2.0f);
}

void test_bad_arguments(CpuBackend& be) {
  std::vector<float> A(64), B(64), C(64);
  auto throws = [&](auto fn) {
    try {
      fn();
    } catch (const ps::Error& e) {
      return std::string(e.what()).find("gemm_") != std::string::npos;
    }
    return false;
  };
  CHECK(throws([&] { be.gemm_nt(2, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.5f, C.data(), 2); }));
  CHECK(throws([&] { be.gemm_nt(2, 2, 4, 1.0f, A.data(), 3, B.data(), 4, 0.0f, C.data(), 2); }));
  CHECK(throws([&] { be.gemm_nn(2, 4, 2, 1.0f, A.data(), 2, B.data(), 3, 0.0f, C.data(), 4); }));
  CHECK(throws([&] { be.gemm_tn(4, 2, 2, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C.data(), 2); }));
  CHECK(throws([&] { be.gemm_tn(2, 3, 2, 1.0f, A.data(), 2, B.data(), 3, 0.0f, C.data(), 2); }));
  CHECK(throws([&] { be.gemm_nn(-1, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2); }));
}

// ---- LoRA -----------------------------------------------------------------

struct LoraCase {
  int M, N, K, r;
  float s;
};

// Float64 matrix helpers for the references (row-major, dense).
std::vector<double> matmul_nt(const std::vector<float>& X, const std::vector<float>& W, int M,
                              int N, int K) {  // X[M,K] · W[N,K]^T
  std::vector<double> Y((size_t)M * N, 0.0);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int p = 0; p < K; ++p) acc += (double)X[(size_t)i * K + p] * W[(size_t)j * K + p];
      Y[(size_t)i * N + j] = acc;
    }
  return Y;
}

// Relative-to-magnitude comparison for composite products (several GEMMs deep):
// the tolerance scales with the inner dimensions.
void check_vec(const std::vector<float>& got, const std::vector<double>& want, double tol,
               const std::string& what) {
  double scale = 0.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * (scale + 1.0))) {
      if (bad++ < 3)
        pstest::fail(__FILE__, __LINE__,
                     what + "[" + std::to_string(i) + "] = " + std::to_string(got[i]) +
                         ", want " + std::to_string(want[i]));
    }
}

void test_lora_reference(CpuBackend& be, const LoraCase& c, std::mt19937& rng) {
  const int M = c.M, N = c.N, K = c.K, r = c.r;
  const float s = c.s;
  auto X = random_vec((size_t)M * K, rng), A = random_vec((size_t)r * K, rng),
       B = random_vec((size_t)N * r, rng), Y0 = random_vec((size_t)M * N, rng),
       dY = random_vec((size_t)M * N, rng), dA0 = random_vec((size_t)r * K, rng),
       dB0 = random_vec((size_t)N * r, rng), dX0 = random_vec((size_t)M * K, rng);
  const std::string tag = " M" + std::to_string(M) + " N" + std::to_string(N) + " K" +
                          std::to_string(K) + " r" + std::to_string(r) + " on " + be.describe();
  const double eps = std::numeric_limits<float>::epsilon();
  const double tol = 4 * eps * (K + N + M + r);

  // Forward.
  std::vector<float> H((size_t)M * r, std::numeric_limits<float>::quiet_NaN()), Y = Y0;
  be.lora_forward(M, N, K, r, s, X.data(), A.data(), B.data(), H.data(), Y.data());
  const std::vector<double> Href = matmul_nt(X, A, M, r, K);
  std::vector<double> Yref((size_t)M * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int q = 0; q < r; ++q) acc += Href[(size_t)i * r + q] * B[(size_t)j * r + q];
      Yref[(size_t)i * N + j] = Y0[(size_t)i * N + j] + s * acc;
    }
  check_vec(H, Href, tol, "lora_forward H" + tag);
  check_vec(Y, Yref, tol, "lora_forward Y" + tag);

  // Backward, from the H the forward produced.
  std::vector<float> dH((size_t)M * r, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> dA = dA0, dB = dB0, dX = dX0;
  be.lora_backward(M, N, K, r, s, X.data(), A.data(), B.data(), H.data(), dY.data(), dH.data(),
                   dA.data(), dB.data(), dX.data());
  std::vector<double> dHref((size_t)M * r), dAref((size_t)r * K), dBref((size_t)N * r),
      dXref((size_t)M * K);
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < r; ++q) {
      double acc = 0.0;
      for (int j = 0; j < N; ++j) acc += (double)dY[(size_t)i * N + j] * B[(size_t)j * r + q];
      dHref[(size_t)i * r + q] = s * acc;
    }
  for (int j = 0; j < N; ++j)
    for (int q = 0; q < r; ++q) {
      double acc = 0.0;
      for (int i = 0; i < M; ++i) acc += (double)dY[(size_t)i * N + j] * H[(size_t)i * r + q];
      dBref[(size_t)j * r + q] = dB0[(size_t)j * r + q] + s * acc;
    }
  for (int q = 0; q < r; ++q)
    for (int k = 0; k < K; ++k) {
      double acc = 0.0;
      for (int i = 0; i < M; ++i) acc += dHref[(size_t)i * r + q] * X[(size_t)i * K + k];
      dAref[(size_t)q * K + k] = dA0[(size_t)q * K + k] + acc;
    }
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k) {
      double acc = 0.0;
      for (int q = 0; q < r; ++q) acc += dHref[(size_t)i * r + q] * A[(size_t)q * K + k];
      dXref[(size_t)i * K + k] = dX0[(size_t)i * K + k] + acc;
    }
  check_vec(dH, dHref, tol, "lora_backward dH" + tag);
  check_vec(dB, dBref, tol, "lora_backward dB" + tag);
  check_vec(dA, dAref, tol, "lora_backward dA" + tag);
  check_vec(dX, dXref, tol, "lora_backward dX" + tag);

  // dX may be nullptr; the other gradients are unchanged by that.
  std::vector<float> dA2 = dA0, dB2 = dB0;
  be.lora_backward(M, N, K, r, s, X.data(), A.data(), B.data(), H.data(), dY.data(), dH.data(),
                   dA2.data(), dB2.data(), nullptr);
  CHECK(dA2 == dA);
  CHECK(dB2 == dB);
}

// loss = sum(G ⊙ Y(X, A, B)) is linear in each of X, A, B separately, so a
// central difference is exact up to rounding: compare it with the gradients
// lora_backward accumulates into zeroed buffers.
void test_lora_finite_differences(CpuBackend& be) {
  const int M = 9, N = 11, K = 13, r = 3;
  const float s = 0.7f, h = 0.25f;
  std::mt19937 rng(99);
  auto X = random_vec((size_t)M * K, rng), A = random_vec((size_t)r * K, rng),
       B = random_vec((size_t)N * r, rng), G = random_vec((size_t)M * N, rng);
  auto loss = [&]() {
    std::vector<float> H((size_t)M * r), Y((size_t)M * N, 0.0f);
    be.lora_forward(M, N, K, r, s, X.data(), A.data(), B.data(), H.data(), Y.data());
    double L = 0.0;
    for (size_t i = 0; i < Y.size(); ++i) L += (double)G[i] * Y[i];
    return L;
  };
  std::vector<float> H((size_t)M * r), Y((size_t)M * N, 0.0f), dH((size_t)M * r);
  be.lora_forward(M, N, K, r, s, X.data(), A.data(), B.data(), H.data(), Y.data());
  std::vector<float> dA((size_t)r * K, 0.0f), dB((size_t)N * r, 0.0f), dX((size_t)M * K, 0.0f);
  be.lora_backward(M, N, K, r, s, X.data(), A.data(), B.data(), H.data(), G.data(), dH.data(),
                   dA.data(), dB.data(), dX.data());
  auto fd_check = [&](std::vector<float>& param, const std::vector<float>& grad, const char* name) {
    for (size_t i = 0; i < param.size(); ++i) {
      const float keep = param[i];
      param[i] = keep + h;
      const double up = loss();
      param[i] = keep - h;
      const double down = loss();
      param[i] = keep;
      const double fd = (up - down) / (2.0 * h);
      if (!pstest::close(grad[i], fd, 1e-4, 2e-4))
        pstest::fail(__FILE__, __LINE__,
                     std::string("finite difference d") + name + "[" + std::to_string(i) +
                         "]: backward " + std::to_string(grad[i]) + ", fd " + std::to_string(fd));
    }
  };
  fd_check(A, dA, "A");
  fd_check(B, dB, "B");
  fd_check(X, dX, "X");
}

}  // namespace

int main() {
  std::vector<std::unique_ptr<CpuBackend>> backends;
  backends.emplace_back(new CpuBackend(1));
  backends.emplace_back(new CpuBackend(2));
  backends.emplace_back(new CpuBackend(3));
  backends.emplace_back(new CpuBackend(1, /*force_portable=*/true));
  backends.emplace_back(new CpuBackend(2, /*force_portable=*/true));
  for (auto& be : backends) std::printf("  backend: %s\n", be->describe().c_str());
  if (!backends[0]->use_avx2())
    std::printf("  note: no AVX2/FMA kernels on this build or CPU; only the portable path runs\n");

  test_gemm_shapes(backends);
  for (auto& be : backends) test_degenerate(*be);
  test_bad_arguments(*backends[1]);

  const LoraCase lora_cases[] = {
      {37, 29, 45, 7, 0.5f}, {1, 64, 96, 8, 2.0f}, {130, 70, 90, 1, 1.0f}, {64, 48, 200, 16, 0.25f},
  };
  std::mt19937 rng(7);
  for (auto& be : backends)
    for (const LoraCase& c : lora_cases) test_lora_reference(*be, c, rng);
  test_lora_finite_differences(*backends[1]);
  test_lora_finite_differences(*backends[4]);

  return pstest::finish("test_gemm");
}
