// CPU 16-bit GEMMs: the frozen base weights of LoRA / prompt / prefix tuning
// kept as a BF16 / F16 checkpoint stores them (backend.h, half_weight.h).
//
// Bit-identical to the fp32 GEMM on the widened weight, by construction: the
// products run the fp32 GEMM's own kernel set (gemm_kernels.h) with its own
// k-blocks (k_block: K and the kernel set alone decide them), packing op(A)
// with its pack_a and calling its micro-kernels; only the packing of op(B)
// differs, and it widens the 16-bit values (exactly) into the very panels the
// fp32 packing would have produced:
//   nn: op(B)[p, j] = W[p, j] -> each packed row of a panel is a contiguous
//       run of W, widened in place;
//   nt: op(B)[p, j] = W[j, p] -> nr rows of W are widened into a small
//       [nr x kc] tile and transposed by the kernel set's pack_b.
// Each micro-kernel call sums its k-block in a fixed order and applies alpha
// and beta as the fp32 driver does, so every output element is produced by
// the same operations whatever the blocking of the output or the threads.
// (The driver is weight_gemm_driver.h, shared with the NF4 GEMM: tasks own
// column blocks, op(A) is packed once per block of at most kMbMax rows.)
//
// The shapes the fp32 GEMM hands to its GEMV kernels take the same kernels:
//   nt, M == 1 (generation): dot_rows on rows of W: the AVX2 and AVX-512
//       forms widen in registers (half_gemm_avx2.cpp; half the bytes of the
//       fp32 GEMV read: 2.0x its speed once W is out of cache, and the
//       AVX-512 form ~15% faster than fp32 on an L2-resident W); the
//       portable form widens a few rows into L1 and runs dot_rows;
//   nn, M == 1: axpy_rows on strips of 64 widened columns (each column is
//       summed over k in order, independent of the strip);
//   N == 1, or nt with K == 1 (degenerate, tiny weights): the whole weight
//       widened into a scratch buffer and the fp32 GEMM itself.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "cpu_backend.h"
#include "error.h"
#include "gemm_kernels.h"
#include "half_kernels.h"
#include "model/half.h"
#include "weight_gemm_driver.h"
#include "workspace.h"

namespace ps {

namespace halfk {

void widen_bf16_portable(const uint16_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);  // a shift: vectorises
}

void widen_f16_portable(const uint16_t* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

#if defined(PS_HAVE_AVX2_KERNELS)
bool f16c_supported() {
  static const bool yes = detect_cpu_features().f16c;
  return yes;
}
#endif

}  // namespace halfk

namespace {

using gemm::KernelSet;
using weightgemm::ceil_div;
using weightgemm::fused_gemm;
using weightgemm::Layout;
using weightgemm::zero_or_keep;

// The weight GEMM driver's converter (weight_gemm_driver.h): a run of W widened.
auto widen_run(halfk::WidenFn widen, const HalfWeight& W) {
  return [widen, &W](int64_t first, int len, float* dst) { widen(W.data + first, (size_t)len, dst); };
}

constexpr int kGemvRows = 4;     // rows of W widened at once by the portable GEMV
constexpr int kStripCols = 64;   // columns of W widened at once by the nn GEMV

// Per-thread buffers, reused across calls (workspace.h).
thread_local Workspace t_rows("the 16-bit GEMM workspace");      // GEMV: a few widened rows / one strip
thread_local Workspace t_whole("the 16-bit GEMM workspace");     // degenerate shapes: the widened weight

// fn(begin, end) over [0, n) split over the pool when the GEMV is large enough.
template <typename Fn>
void gemv_split(ThreadPool& pool, double fmas, size_t n, Fn&& fn) {
  if (pool.size() > 1 && fmas >= gemm::kGemvParallelMinFmas)
    pool.parallel_for(n, [&](size_t b, size_t e, int) { fn(b, e); });
  else
    fn(size_t{0}, n);
}

// nt, M == 1: Y[0, j] = alpha * dot(x, W[j, :]) (+ Y), the kernel set's dot_rows.
void gemv_nt(const KernelSet& ks, ThreadPool& pool, halfk::Isa isa, halfk::WidenFn widen, const float* x,
             const HalfWeight& W, float alpha, bool accumulate, float* y) {
  const int N = W.rows, K = W.cols;
#if defined(PS_HAVE_AVX2_KERNELS)
  // The AVX2 and AVX-512 sets' dot_rows sum in one order, which the fused forms reproduce.
  if (isa != halfk::Isa::Portable && gemm::dot_rows_in_avx2_order(ks) &&
      (W.bf16 || halfk::f16c_supported())) {
    const auto dot = isa == halfk::Isa::Avx512 ? halfk::dot_rows_avx512 : halfk::dot_rows_avx2;
    gemv_split(pool, (double)N * K, (size_t)N, [&](size_t b, size_t e) {
      dot((int)(e - b), K, alpha, x, W.data + b * K, K, W.bf16, accumulate, y + b, 1);
    });
    return;
  }
#endif
  (void)isa;
  gemv_split(pool, (double)N * K, (size_t)N, [&](size_t b, size_t e) {
    float* rows = t_rows.get((size_t)kGemvRows * K + gemm::kPackSlack);
    for (size_t j = b; j < e; j += kGemvRows) {
      const int n = (int)std::min<size_t>(kGemvRows, e - j);
      widen(W.data + j * K, (size_t)n * K, rows);
      ks.dot_rows(n, K, alpha, x, rows, K, accumulate, y + j, 1);
    }
  });
}

// nn, M == 1: dx[0, j] = alpha * sum_p dy[p] W[p, j] (+ dx), the kernel set's axpy_rows.
void gemv_nn(const KernelSet& ks, ThreadPool& pool, halfk::WidenFn widen, const float* dy, const HalfWeight& W,
             float alpha, bool accumulate, float* dx) {
  const int N = W.cols, K = W.rows;  // outputs, summed terms
  const size_t strips = (size_t)ceil_div(N, kStripCols);
  gemv_split(pool, (double)N * K, strips, [&](size_t b, size_t e) {
    float* strip = t_rows.get((size_t)K * kStripCols + gemm::kPackSlack);
    for (size_t s = b; s < e; ++s) {
      const int j0 = (int)s * kStripCols, cols = std::min(kStripCols, N - j0);
      for (int p = 0; p < K; ++p) widen(W.data + (size_t)p * N + j0, (size_t)cols, strip + (size_t)p * kStripCols);
      ks.axpy_rows(cols, K, alpha, dy, 1, strip, kStripCols, accumulate, dx + j0);
    }
  });
}

// The whole weight widened, then the fp32 GEMM with the caller's arguments.
void via_fp32(const KernelSet& ks, ThreadPool& pool, halfk::WidenFn widen, Layout layout, int M,
              const float* A, int lda, const HalfWeight& W, float alpha, float beta, float* C, int ldc) {
  float* w = t_whole.get((size_t)W.numel() + 1);
  widen(W.data, (size_t)W.numel(), w);
  if (layout == Layout::NT)
    gemm::gemm(ks, pool, gemm::Layout::NT, M, W.rows, W.cols, alpha, A, lda, w, W.cols, beta, C, ldc);
  else
    gemm::gemm(ks, pool, gemm::Layout::NN, M, W.cols, W.rows, alpha, A, lda, w, W.cols, beta, C, ldc);
}

}  // namespace

namespace halfk {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    default: return "portable";
  }
}

std::vector<Isa> usable_isas() {
  std::vector<Isa> isas{Isa::Portable};
#if defined(PS_HAVE_AVX2_KERNELS)
  const CpuFeatures f = detect_cpu_features();
  if (f.avx2 && f.fma) {
    isas.push_back(Isa::Avx2);
    if (gemm::avx512_supported()) isas.push_back(Isa::Avx512);
  }
#endif
  return isas;
}

// The best the backend may use: none of it with force_portable (use_avx2() false).
Isa isa_for(const CpuBackend& be) {
#if defined(PS_HAVE_AVX2_KERNELS)
  static const bool avx512 = gemm::avx512_supported();
  if (be.use_avx2()) return avx512 ? Isa::Avx512 : Isa::Avx2;
#endif
  (void)be;
  return Isa::Portable;
}

WidenFn widen_for(Isa isa, bool bf16) {
#if defined(PS_HAVE_AVX2_KERNELS)
  if (isa != Isa::Portable) {
    if (bf16) return widen_bf16_avx2;
    if (f16c_supported()) return widen_f16_f16c;
  }
#endif
  (void)isa;
  return bf16 ? widen_bf16_portable : widen_f16_portable;
}

void half_gemm_nt(const gemm::KernelSet& ks, ThreadPool& pool, Isa isa, int M, const float* X, int ldx,
                  const HalfWeight& W, float alpha, float beta, float* Y, int ldy) {
  half_check_gemm_args("half_gemm_nt", M, W, ldx, W.cols, ldy, W.rows, beta);
  if (M == 0 || W.rows == 0) return;
  if (W.cols == 0 || alpha == 0.0f) return zero_or_keep(M, W.rows, beta, Y, ldy);
  const WidenFn widen = widen_for(isa, W.bf16);
  if (W.rows == 1 || W.cols == 1) return via_fp32(ks, pool, widen, Layout::NT, M, X, ldx, W, alpha, beta, Y, ldy);
  if (M == 1) return gemv_nt(ks, pool, isa, widen, X, W, alpha, beta != 0.0f, Y);
  fused_gemm(ks, pool, widen_run(widen, W), Layout::NT, W.rows, W.cols, M, X, ldx, alpha, beta, Y, ldy);
}

void half_gemm_nn(const gemm::KernelSet& ks, ThreadPool& pool, Isa isa, int M, const float* dY, int lddy,
                  const HalfWeight& W, float alpha, float beta, float* dX, int lddx) {
  half_check_gemm_args("half_gemm_nn", M, W, lddy, W.rows, lddx, W.cols, beta);
  if (M == 0 || W.cols == 0) return;
  if (W.rows == 0 || alpha == 0.0f) return zero_or_keep(M, W.cols, beta, dX, lddx);
  const WidenFn widen = widen_for(isa, W.bf16);
  if (W.cols == 1) return via_fp32(ks, pool, widen, Layout::NN, M, dY, lddy, W, alpha, beta, dX, lddx);
  if (M == 1) return gemv_nn(ks, pool, widen, dY, W, alpha, beta != 0.0f, dX);
  fused_gemm(ks, pool, widen_run(widen, W), Layout::NN, W.rows, W.cols, M, dY, lddy, alpha, beta, dX, lddx);
}

}  // namespace halfk

void CpuBackend::half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta,
                              float* Y, int ldy) {
  halfk::half_gemm_nt(gemm::kernels_for(*this), pool(), halfk::isa_for(*this), M, X, ldx, W, alpha, beta, Y, ldy);
}

void CpuBackend::half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                              float* dX, int lddx) {
  halfk::half_gemm_nn(gemm::kernels_for(*this), pool(), halfk::isa_for(*this), M, dY, lddy, W, alpha, beta, dX, lddx);
}

}  // namespace ps
