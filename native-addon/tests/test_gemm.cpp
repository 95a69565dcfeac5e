// CPU GEMM and fused LoRA op against float64 references.
//
// Every product is checked element by element against a double-precision
// reference with the rigorous fp32 dot-product error bound
//   |got - want| <= (K + 4) * eps * (|alpha| * sum_p |a_ip b_pj| + |C0_ij|),
// which a wrong index, a dropped k-block or a missed edge tile exceeds by
// orders of magnitude. The padding of A and B (ld > minimum) holds NaN, so
// reading it shows; C's padding holds a sentinel that must survive. Every
// kernel set the CPU supports (portable, AVX2, AVX-512) runs on 1, 2 and 3
// threads; the GEMM promises results that are bit-identical for any thread
// count, and that is asserted too.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/gemm_kernels.h"
#include "check.h"
#include "error.h"
#include "threadpool.h"

using ps::CpuBackend;
using ps::gemm::KernelSet;
using ps::gemm::Layout;

namespace {

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
  const float nan = std::numeric_limits<float>::quiet_NaN();
  P.A.assign((size_t)a_rows * P.lda + 1, nan);
  P.B.assign((size_t)b_rows * P.ldb + 1, nan);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (int r = 0; r < a_rows; ++r)
    for (int c = 0; c < a_cols; ++c) P.A[(size_t)r * P.lda + c] = d(rng);
  for (int r = 0; r < b_rows; ++r)
    for (int c = 0; c < b_cols; ++c) P.B[(size_t)r * P.ldb + c] = d(rng);
  P.C0.assign((size_t)M * P.ldc + 1, kSentinel);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j)
      P.C0[(size_t)i * P.ldc + j] = beta == 0.0f ? nan : d(rng);
  return P;
}

// One way of running a GEMM: a kernel set on a pool of some size.
struct Runner {
  const KernelSet* ks;
  ps::ThreadPool* pool;
  std::string name() const {
    return std::string(ks->name) + " kernels, " + std::to_string(pool->size()) + " threads";
  }
};

void run_gemm(const Runner& r, const Problem& P, float* C) {
  ps::gemm::gemm(*r.ks, *r.pool, P.layout, P.M, P.N, P.K, P.alpha, P.A.data(), P.lda, P.B.data(),
                 P.ldb, P.beta, C, P.ldc);
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

// The float64 reference of a problem and each element's error bound.
struct Reference {
  std::vector<double> want, tol;
};

Reference reference(const Problem& P) {
  const double eps = std::numeric_limits<float>::epsilon();
  Reference R;
  R.want.resize((size_t)P.M * P.N);
  R.tol.resize((size_t)P.M * P.N);
  for (int i = 0; i < P.M; ++i) {
    for (int j = 0; j < P.N; ++j) {
      double dot = 0.0, mag = 0.0;
      for (int p = 0; p < P.K; ++p) {
        const double t = (double)op_a(P, i, p) * op_b(P, p, j);
        dot += t;
        mag += std::fabs(t);
      }
      const double c0 = P.beta == 0.0f ? 0.0 : P.C0[(size_t)i * P.ldc + j];
      R.want[(size_t)i * P.N + j] = P.alpha * dot + c0;
      R.tol[(size_t)i * P.N + j] =
          (P.K + 4) * eps * (std::fabs(P.alpha) * mag + std::fabs(c0)) + 1e-30;
    }
  }
  return R;
}

// Checks C against the reference, and that C's padding is untouched.
void check_against_reference(const Problem& P, const Reference& R, const std::vector<float>& C,
                             const std::string& what) {
  int bad = 0;
  for (int i = 0; i < P.M; ++i) {
    for (int j = 0; j < P.N; ++j) {
      const double got = C[(size_t)i * P.ldc + j];
      const double want = R.want[(size_t)i * P.N + j], tol = R.tol[(size_t)i * P.N + j];
      if (!(std::fabs(got - want) <= tol)) {  // also catches NaN
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
  if (C.back() != kSentinel) pstest::fail(__FILE__, __LINE__, what + " wrote past the end of C");
}

struct Shape {
  int M, N, K, pad;
};

// Every shape, layout and beta on every kernel set the CPU supports and on
// 1, 2 and 3 threads; plus the CpuBackend entry points, which must pick the
// kernel set kernels_for() names and give its exact bits.
void test_gemm_shapes(const std::vector<Runner>& runners,
                      std::vector<std::unique_ptr<CpuBackend>>& backends) {
  const Shape shapes[] = {
      {1, 1, 1, 0},       {7, 13, 5, 0},    {7, 13, 5, 3},     {129, 67, 300, 0},
      {129, 67, 300, 5},  {1, 100, 37, 0},  {1, 1000, 600, 2}, {2, 1000, 600, 0},
      {60, 1, 70, 0},     {60, 1, 70, 4},   {6, 16, 8, 0},     {12, 32, 400, 0},
      {500, 530, 400, 1}, {37, 8, 513, 0},  {3, 5, 1, 0},      {300, 300, 1, 0},
      {25, 40, 77, 0},    {50, 20, 9, 2},   {1, 4500, 1000, 0}, {4500, 1, 1000, 3},
      {700, 40, 50, 0},   // more rows than one row block holds, even on one thread
  };
  std::mt19937 rng(1234);
  int checked = 0;
  for (Layout layout : {Layout::NT, Layout::NN, Layout::TN}) {
    for (const Shape& s : shapes) {
      for (float beta : {0.0f, 1.0f}) {
        const float alpha = beta == 0.0f ? 1.0f : -0.75f;
        Problem P = make_problem(layout, s.M, s.N, s.K, s.pad, alpha, beta, rng);
        const Reference R = reference(P);
        const std::string shape = std::string("gemm_") + layout_name(layout) + " " +
                                  std::to_string(s.M) + "x" + std::to_string(s.N) + "x" +
                                  std::to_string(s.K) + " pad " + std::to_string(s.pad) +
                                  " beta " + std::to_string((int)beta);
        std::vector<std::pair<const KernelSet*, std::vector<float>>> first;  // per kernel set
        auto result_of = [&](const KernelSet* ks) -> const std::vector<float>* {
          for (auto& f : first)
            if (f.first == ks) return &f.second;
          return nullptr;
        };
        for (const Runner& r : runners) {
          std::vector<float> C = P.C0;
          run_gemm(r, P, C.data());
          const std::string what = shape + " on " + r.name();
          check_against_reference(P, R, C, what);
          ++checked;
          // Same kernels, any thread count: bit-identical.
          if (const std::vector<float>* ref = result_of(r.ks)) {
            if (std::memcmp(ref->data(), C.data(), C.size() * sizeof(float)) != 0)
              pstest::fail(__FILE__, __LINE__,
                           what + " differs from the same kernels on fewer threads");
          } else {
            first.emplace_back(r.ks, C);
          }
          // Same runner twice: bit-identical.
          std::vector<float> again = P.C0;
          run_gemm(r, P, again.data());
          if (std::memcmp(again.data(), C.data(), C.size() * sizeof(float)) != 0)
            pstest::fail(__FILE__, __LINE__, what + " is not repeatable");
        }
        for (auto& be : backends) {
          std::vector<float> C = P.C0;
          run_gemm(*be, P, C.data());
          const std::vector<float>* ref = result_of(&ps::gemm::kernels_for(*be));
          CHECK(ref != nullptr);
          if (ref && std::memcmp(ref->data(), C.data(), C.size() * sizeof(float)) != 0)
            pstest::fail(__FILE__, __LINE__, shape + " on " + be->describe() +
                                                 " differs from its kernel set's result");
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
  // GEMM: every usable kernel set, on 1, 2 and 3 threads.
  std::vector<std::unique_ptr<ps::ThreadPool>> pools;
  for (int t = 1; t <= 3; ++t) pools.emplace_back(new ps::ThreadPool(t));
  std::vector<Runner> runners;
  for (const KernelSet* ks : ps::gemm::usable_kernel_sets())
    for (auto& pool : pools) runners.push_back({ks, pool.get()});
  std::printf("  kernel sets:");
  for (const KernelSet* ks : ps::gemm::usable_kernel_sets()) std::printf(" %s", ks->name);
  std::printf("\n");

  // The backend entry points (and LoRA): default kernels and forced portable.
  std::vector<std::unique_ptr<CpuBackend>> backends;
  backends.emplace_back(new CpuBackend(1));
  backends.emplace_back(new CpuBackend(2));
  backends.emplace_back(new CpuBackend(2, /*force_portable=*/true));
  for (auto& be : backends)
    std::printf("  backend: %s, GEMM kernels %s\n", be->describe().c_str(),
                ps::gemm::kernels_for(*be).name);
  CHECK(std::string(ps::gemm::kernels_for(*backends[2]).name) == "portable");
  if (!backends[0]->use_avx2())
    std::printf("  note: no AVX2/FMA kernels on this build or CPU; only the portable path runs\n");

  test_gemm_shapes(runners, backends);
  for (auto& be : backends) test_degenerate(*be);
  test_bad_arguments(*backends[1]);

  const LoraCase lora_cases[] = {
      {37, 29, 45, 7, 0.5f}, {1, 64, 96, 8, 2.0f}, {130, 70, 90, 1, 1.0f}, {64, 48, 200, 16, 0.25f},
  };
  std::mt19937 rng(7);
  for (auto& be : backends)
    for (const LoraCase& c : lora_cases) test_lora_reference(*be, c, rng);
  test_lora_finite_differences(*backends[1]);
  test_lora_finite_differences(*backends[2]);

  return pstest::finish("test_gemm");
}
