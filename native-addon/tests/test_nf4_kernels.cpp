// The fused NF4 kernels (nf4_gemm_nt, nf4_gemm_nn, the GEMV path) against
// dequantize-then-fp32-GEMM.
//
// Reference: W is dequantized by nf4_dequantize_reference (itself checked
// bit-exactly against a float64 implementation in test_nf4_quant), then the
// product is formed in float64. The fused result must be within the rigorous
// fp32 summation bound 2 (K + 4) eps (|alpha| sum_p |x_p w_p| + |C0|): two
// fp32 evaluations of the same sum in different orders differ by at most
// that. On top: for more than kGemvMaxRows rows the fused GEMM runs the very
// packing, k-blocking and micro-kernels of the fp32 GEMM, so it must equal
// backend.gemm_nt / gemm_nn on the dequantized W BIT FOR BIT; and every result
// must be bit-identical for 1, 2, 3 and 4 threads. Padding of X (ld > K)
// holds NaN so reading it shows; Y's padding holds a sentinel that must
// survive.
//
// The GEMV (M <= 4) has one implementation per instruction set (portable,
// AVX2, AVX-512) and two layouts (rows of whole blocks: the fast pass that
// sums code * x per block and scales once per block; other shapes: per
// element). CpuBackend runs only the best ISA the CPU has, so test_gemv runs
// every ISA this CPU can run through nf4k::gemv_nt on pools of 1-4 threads,
// on shapes large enough to be split over threads, under the same bound.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/nf4_kernels.h"
#include "check.h"
#include "error.h"
#include "quant/nf4_quantize.h"
#include "threadpool.h"

namespace {

constexpr float kSentinel = 777.0f;
constexpr int kGemvMaxRows = ps::nf4k::kGemvMaxRows;

std::vector<float> normal(size_t n, std::mt19937& rng, float sd) {
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Case {
  int M, N, K, bs;
  bool dq;
  float alpha, beta;
  int pad;  // extra columns in the row strides
};

std::string name(const Case& c, const char* op, bool portable, int threads) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s M=%d N=%d K=%d bs=%d %s alpha=%g beta=%g pad=%d %s t=%d", op,
                c.M, c.N, c.K, c.bs, c.dq ? "dq" : "fp32-absmax", c.alpha, c.beta, c.pad,
                portable ? "portable" : "auto", threads);
  return buf;
}

// One product's inputs, float64 reference and per-element error bound.
// nt: Y[M,N] = alpha X[M,K] W[N,K]^T + beta Y.  nn: dX[M,K] = alpha dY[M,N] W[N,K] + beta dX.
struct Problem {
  Case c;
  bool nn;
  int rows_in, in_cols, out_cols, ldi, ldo;
  ps::Nf4Quantized q;
  std::vector<float> wd, X, C0;
  std::vector<double> want, bound;

  Problem(const Case& cs, bool nn_, std::mt19937& rng) : c(cs), nn(nn_) {
    rows_in = c.M, in_cols = nn ? c.N : c.K, out_cols = nn ? c.K : c.N;
    ldi = in_cols + c.pad, ldo = out_cols + c.pad;
    const auto w = normal((size_t)c.N * c.K, rng, 0.05f);
    q = ps::nf4_quantize(w.data(), c.N, c.K, c.bs, c.dq);
    wd.resize((size_t)c.N * c.K);
    ps::nf4_dequantize_reference(q.view(), wd.data());

    X.assign((size_t)rows_in * ldi, std::numeric_limits<float>::quiet_NaN());
    const auto xv = normal((size_t)rows_in * in_cols, rng, 1.0f);
    for (int m = 0; m < rows_in; ++m)
      for (int p = 0; p < in_cols; ++p) X[(size_t)m * ldi + p] = xv[(size_t)m * in_cols + p];
    C0.assign((size_t)rows_in * ldo, kSentinel);
    const auto cv = normal((size_t)rows_in * out_cols, rng, 1.0f);
    for (int m = 0; m < rows_in; ++m)
      for (int j = 0; j < out_cols; ++j) C0[(size_t)m * ldo + j] = cv[(size_t)m * out_cols + j];

    // float64 reference and the error bound.
    const double eps = std::numeric_limits<float>::epsilon();
    const int red = in_cols;
    want.resize((size_t)rows_in * out_cols), bound.resize(want.size());
    for (int m = 0; m < rows_in; ++m)
      for (int j = 0; j < out_cols; ++j) {
        double s = 0.0, a = 0.0;
        for (int p = 0; p < red; ++p) {
          const double wv = nn ? wd[(size_t)p * c.K + j] : wd[(size_t)j * c.K + p];
          const double t = (double)X[(size_t)m * ldi + p] * wv;
          s += t, a += std::fabs(t);
        }
        const double c0 = c.beta != 0.0f ? (double)C0[(size_t)m * ldo + j] : 0.0;
        want[(size_t)m * out_cols + j] = c.alpha * s + c0;
        bound[(size_t)m * out_cols + j] =
            2.0 * (red + 4) * eps * (std::fabs(c.alpha) * a + std::fabs(c0)) + 1e-30;
      }
  }

  // Fails the test when C is outside the bound or wrote into Y's padding.
  void check(const std::vector<float>& C, const std::string& what) const {
    int bad = 0, sentinel = 0;
    double worst = 0.0;
    for (int m = 0; m < rows_in; ++m) {
      for (int j = 0; j < out_cols; ++j) {
        const size_t k = (size_t)m * out_cols + j;
        const double err = std::fabs((double)C[(size_t)m * ldo + j] - want[k]);
        if (!(err <= bound[k])) ++bad;
        worst = std::max(worst, err / bound[k]);
      }
      for (int j = out_cols; j < ldo; ++j) sentinel += C[(size_t)m * ldo + j] != kSentinel;
    }
    if (bad || sentinel)
      pstest::fail(__FILE__, __LINE__, what + ": " + std::to_string(bad) + " outside the bound (worst " +
                                           std::to_string(worst) + "x), " + std::to_string(sentinel) +
                                           " padding writes");
  }
};

// Through CpuBackend (portable, and the best ISA of this CPU), 1-4 threads.
void run_case(const Case& c, bool nn, std::mt19937& rng) {
  const Problem pr(c, nn, rng);
  const ps::Nf4Weight W = pr.q.view();
  for (bool portable : {true, false}) {
    std::vector<float> first;
    for (int threads = 1; threads <= 4; ++threads) {
      ps::CpuBackend be(threads, portable);
      std::vector<float> C = pr.C0;
      if (nn)
        be.nf4_gemm_nn(c.M, pr.X.data(), pr.ldi, W, c.alpha, c.beta, C.data(), pr.ldo);
      else
        be.nf4_gemm_nt(c.M, pr.X.data(), pr.ldi, W, c.alpha, c.beta, C.data(), pr.ldo);
      const std::string what = name(c, nn ? "nn" : "nt", portable, threads);
      pr.check(C, what);
      if (threads == 1) {
        first = C;
        // The blocked path is the fp32 GEMM on the dequantized tiles: same bits.
        // (The fp32 GEMM itself takes its GEMV path for M == 1.)
        if (c.M > kGemvMaxRows || (nn && c.M > 1)) {
          std::vector<float> R = pr.C0;
          if (nn)
            be.gemm_nn(c.M, c.K, c.N, c.alpha, pr.X.data(), pr.ldi, pr.wd.data(), c.K, c.beta, R.data(), pr.ldo);
          else
            be.gemm_nt(c.M, c.N, c.K, c.alpha, pr.X.data(), pr.ldi, pr.wd.data(), c.K, c.beta, R.data(), pr.ldo);
          if (std::memcmp(R.data(), C.data(), C.size() * sizeof(float)) != 0)
            pstest::fail(__FILE__, __LINE__, what + ": differs from gemm on the dequantized weight");
        }
      } else if (std::memcmp(first.data(), C.data(), C.size() * sizeof(float)) != 0) {
        pstest::fail(__FILE__, __LINE__, what + ": differs from the 1-thread result");
      }
    }
  }
}

// The GEMV of every ISA this CPU can run (nf4k::gemv_nt), 1-4 threads.
void test_gemv() {
  const std::vector<ps::nf4k::GemvIsa> isas = ps::nf4k::usable_gemv_isas();
  std::printf("nf4 GEMV ISAs tested:");
  for (auto isa : isas) std::printf(" %s", ps::nf4k::gemv_isa_name(isa));
  std::printf("\n");
  CHECK(isas.front() == ps::nf4k::GemvIsa::Portable);

  std::vector<std::unique_ptr<ps::ThreadPool>> pools;
  for (int t = 1; t <= 4; ++t) pools.emplace_back(new ps::ThreadPool(t));
  std::mt19937 rng(7);
  // M * N * K >= 2^18 for most, so the rows are split over the threads (at
  // group boundaries that differ from the 1-thread run: N % 4 != 0).
  const Case cases[] = {
      // rows of whole blocks: the fast pass
      {1, 203, 1536, 64, true, 1.0f, 0.0f, 0},
      {1, 45, 64, 64, false, 1.0f, 1.0f, 3},
      {2, 130, 1024, 32, true, -0.5f, 1.0f, 1},
      {3, 99, 1024, 256, false, 1.0f, 0.0f, 0},
      {4, 67, 1024, 1024, true, 2.0f, 1.0f, 2},
      {1, 66, 4096, 4096, true, 1.0f, 0.0f, 0},
      {2, 5, 96, 32, true, 1.0f, 0.0f, 0},
      {3, 300, 576, 64, true, 1.0f, 1.0f, 0},
      {4, 150, 576, 64, true, 1.0f, 0.0f, 5},
      // rows that are not whole blocks: per-element path
      {1, 301, 1000, 64, true, 1.0f, 0.0f, 0},
      {2, 129, 1023, 32, false, 1.0f, 1.0f, 1},
      {3, 97, 1056, 64, true, -1.0f, 0.0f, 0},
      {4, 65, 1031, 128, true, 1.0f, 1.0f, 0},
  };
  int aligned = 0;
  for (const Case& c : cases) {
    const Problem pr(c, false, rng);
    const ps::Nf4Weight W = pr.q.view();
    aligned += ps::nf4k::gemv_rows_aligned(W);
    for (auto isa : isas) {
      std::vector<float> first;
      for (int t = 1; t <= 4; ++t) {
        std::vector<float> C = pr.C0;
        ps::nf4k::gemv_nt(isa, *pools[t - 1], c.M, pr.X.data(), pr.ldi, W, c.alpha, c.beta, C.data(), pr.ldo);
        const std::string what = name(c, "gemv", false, t) + " isa=" + ps::nf4k::gemv_isa_name(isa);
        pr.check(C, what);
        if (t == 1)
          first = C;
        else if (std::memcmp(first.data(), C.data(), C.size() * sizeof(float)) != 0)
          pstest::fail(__FILE__, __LINE__, what + ": differs from the 1-thread result");
      }
    }
  }
  CHECK(aligned == 9);  // both layouts covered
}

void test_shapes() {
  std::mt19937 rng(42);
  const Case cases[] = {
      // generation (GEMV path, M <= 4) incl. odd K (rows start mid-byte) and
      // blocks that cross rows (K % bs != 0)
      {1, 64, 64, 64, true, 1.0f, 0.0f, 0},
      {1, 37, 101, 64, true, 1.0f, 1.0f, 3},
      {1, 200, 576, 64, false, 0.5f, 0.0f, 0},
      {1, 576, 192, 32, true, 1.0f, 1.0f, 0},
      {2, 33, 77, 32, false, -1.5f, 1.0f, 1},
      {3, 96, 130, 128, true, 1.0f, 0.0f, 2},
      {4, 17, 4099, 4096, true, 1.0f, 1.0f, 0},
      // blocked path
      {5, 31, 45, 64, true, 1.0f, 0.0f, 0},
      {7, 65, 99, 32, false, 0.75f, 1.0f, 5},
      {13, 100, 257, 64, true, 1.0f, 1.0f, 0},
      {29, 130, 63, 64, true, -1.0f, 0.0f, 1},
      {64, 192, 576, 64, true, 1.0f, 1.0f, 0},
      {37, 77, 1000, 256, false, 1.0f, 0.0f, 4},
      {130, 45, 800, 64, true, 2.0f, 1.0f, 0},
      {9, 576, 1536, 64, true, 1.0f, 0.0f, 0},
  };
  for (const Case& c : cases) {
    run_case(c, false, rng);
    run_case(c, true, rng);
  }
}

void test_errors() {
  std::vector<float> w(8 * 16, 0.1f), x(64, 1.0f), y(64, 0.0f);
  const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), 8, 16, 64, true);
  ps::CpuBackend be(1);
  auto throws = [](auto fn) {
    try {
      fn();
    } catch (const ps::Error&) {
      return true;
    }
    return false;
  };
  CHECK(throws([&] { be.nf4_gemm_nt(2, x.data(), 15, q.view(), 1.0f, 0.0f, y.data(), 8); }));  // ldx < K
  CHECK(throws([&] { be.nf4_gemm_nt(2, x.data(), 16, q.view(), 1.0f, 0.0f, y.data(), 7); }));  // ldy < N
  CHECK(throws([&] { be.nf4_gemm_nt(2, x.data(), 16, q.view(), 1.0f, 0.5f, y.data(), 8); }));  // beta
  CHECK(throws([&] { be.nf4_gemm_nn(2, x.data(), 7, q.view(), 1.0f, 0.0f, y.data(), 16); }));  // lddy < N
  CHECK(throws([&] { be.nf4_gemm_nn(-1, x.data(), 8, q.view(), 1.0f, 0.0f, y.data(), 16); }));
  ps::Nf4Weight bad = q.view();
  bad.blocksize = 48;
  CHECK(throws([&] { be.nf4_gemm_nt(1, x.data(), 16, bad, 1.0f, 0.0f, y.data(), 8); }));
  // alpha = 0 with beta = 0 clears Y without reading X (NaN here).
  std::vector<float> nanx(64, std::numeric_limits<float>::quiet_NaN()), yy(16, 5.0f);
  be.nf4_gemm_nt(2, nanx.data(), 16, q.view(), 0.0f, 0.0f, yy.data(), 8);
  for (float v : yy) CHECK(v == 0.0f);
}

}  // namespace

int main() {
  test_shapes();
  test_gemv();
  test_errors();
  return pstest::finish("test_nf4_kernels");
}
