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
// (The layout of the work is nf4_gemm.cpp's fused GEMM: tasks own column
// blocks, op(A) is packed once per block of at most kMbMax rows.)
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

constexpr int kMbMax = 528;  // rows per block, as the fp32 GEMM's blocks (gemm.cpp)
constexpr int kNbMax = 512;  // output columns per task, as the fp32 GEMM's blocks
// The fp32 driver's thresholds (gemm.cpp): below them one thread is faster.
constexpr double kParallelMinFmas = 1 << 20;
constexpr double kGemvParallelMinFmas = 1 << 19;
constexpr int kGemvRows = 4;     // rows of W widened at once by the portable GEMV
constexpr int kStripCols = 64;   // columns of W widened at once by the nn GEMV

// Per-thread buffers, reused across calls (workspace.h).
thread_local Workspace t_packed_b("the 16-bit GEMM workspace");  // one task's packed op(B) slice + the nt staging tile
thread_local Workspace t_packed_a("the 16-bit GEMM workspace");  // the caller's packed op(A), shared by all tasks
thread_local Workspace t_rows("the 16-bit GEMM workspace");      // GEMV: a few widened rows / one strip
thread_local Workspace t_whole("the 16-bit GEMM workspace");     // degenerate shapes: the widened weight

int ceil_div(int x, int m) { return (x + m - 1) / m; }
int round_up(int x, int m) { return ceil_div(x, m) * m; }
int k_block(int K, int kc_max) {  // gemm.cpp's: the summation order depends on K and the kernel set only
  const int blocks = ceil_div(K, kc_max);
  return round_up(ceil_div(K, blocks), 8);
}

void zero_or_keep(int M, int N, float beta, float* C, int ldc) {
  if (beta != 0.0f) return;
  for (int i = 0; i < M; ++i) std::fill(C + (size_t)i * ldc, C + (size_t)i * ldc + N, 0.0f);
}

enum class HalfLayout { NT, NN };

// Packs op(B) rows [k0, k0+kc) x columns [n0, n0+cols) of W into ks.nr-wide
// panels (panel[p * nr + j], zero columns past `cols`), as ks.pack_b would
// pack the widened weight.
void pack_b_half(const KernelSet& ks, halfk::WidenFn widen, HalfLayout layout, const HalfWeight& W, int k0, int kc,
                 int n0, int cols, float* dst, float* stage) {
  const int nr = ks.nr;
  const size_t ldw = (size_t)W.cols;
  for (int j0 = 0; j0 < cols; j0 += nr, dst += (size_t)nr * kc) {
    const int w = std::min(nr, cols - j0);
    if (layout == HalfLayout::NN) {
      for (int p = 0; p < kc; ++p) {
        float* d = dst + (size_t)p * nr;
        widen(W.data + (size_t)(k0 + p) * ldw + n0 + j0, (size_t)w, d);
        for (int j = w; j < nr; ++j) d[j] = 0.0f;
      }
    } else {
      for (int j = 0; j < w; ++j) widen(W.data + (size_t)(n0 + j0 + j) * ldw + k0, (size_t)kc, stage + (size_t)j * kc);
      ks.pack_b(stage, 1, kc, kc, w, dst);
    }
  }
}

// C[M, Nout] (beta) += alpha * A[M, Kred] . op(B); op(B) from W as `layout` says.
void fused_block(const KernelSet& ks, ThreadPool& pool, halfk::WidenFn widen, HalfLayout layout, int M,
                const float* A, int lda, const HalfWeight& W, float alpha, float beta, float* C, int ldc) {
  const int Nout = layout == HalfLayout::NT ? W.rows : W.cols;
  const int Kred = layout == HalfLayout::NT ? W.cols : W.rows;
  const bool parallel = pool.size() > 1 && (double)M * Nout * Kred >= kParallelMinFmas;
  const int threads = parallel ? pool.size() : 1;
  const int kstep = k_block(Kred, ks.kc_max);
  const int kblocks = ceil_div(Kred, kstep);
  const int mpad = round_up(M, ks.mr);

  // op(A) packed once: region u = k-block u, all rows.
  const size_t a_region = ((size_t)mpad * kstep + gemm::kPackSlack + 15) / 16 * 16;
  float* pa_all = t_packed_a.get(a_region * kblocks);
  auto pack_a_unit = [&](size_t u) {
    const int k0 = (int)u * kstep;
    ks.pack_a(A + k0, lda, 1, M, std::min(kstep, Kred - k0), pa_all + a_region * u);
  };

  // Column blocks: nr panels dealt evenly, at most kNbMax wide, at least two
  // per thread when there are enough panels.
  const int panels = ceil_div(Nout, ks.nr);
  int ntiles = ceil_div(panels, std::max(1, kNbMax / ks.nr));
  if (threads > 1) ntiles = std::max(ntiles, std::min(panels, 2 * threads));
  const int max_cols = ceil_div(panels, ntiles) * ks.nr;
  const size_t b_floats = ((size_t)max_cols * kstep + gemm::kPackSlack + 15) / 16 * 16;
  const size_t stage_floats = (size_t)ks.nr * kstep + gemm::kPackSlack;

  auto task = [&](size_t t, int) {
    const int n0 = (int)((long long)t * panels / ntiles) * ks.nr;
    const int n1 = std::min(Nout, (int)((long long)(t + 1) * panels / ntiles) * ks.nr);
    const int cols = n1 - n0;
    float* pb = t_packed_b.get(b_floats + stage_floats);
    float* stage = pb + b_floats;
    for (int kb = 0; kb < kblocks; ++kb) {
      const int k0 = kb * kstep, kc = std::min(kstep, Kred - k0);
      pack_b_half(ks, widen, layout, W, k0, kc, n0, cols, pb, stage);
      const float* pa = pa_all + a_region * kb;
      const bool accumulate = kb > 0 || beta != 0.0f;
      for (int j = 0; j < cols; j += ks.nr) {
        const float* bp = pb + (size_t)j * kc;
        const int w = std::min(ks.nr, cols - j);
        float* cj = C + n0 + j;
        if (ks.micro_narrow && 2 * w <= ks.nr) {
          for (int i = 0; i < M; i += 2 * ks.mr)
            ks.micro_narrow(kc, pa + (size_t)i * kc, bp, alpha, accumulate, cj + (size_t)i * ldc, ldc,
                            std::min(2 * ks.mr, M - i), w);
        } else {
          for (int i = 0; i < M; i += ks.mr)
            ks.micro(kc, pa + (size_t)i * kc, bp, alpha, accumulate, cj + (size_t)i * ldc, ldc,
                     std::min(ks.mr, M - i), w);
        }
      }
    }
  };
  if (parallel) {
    pool.run_tasks((size_t)kblocks, [&](size_t u, int) { pack_a_unit(u); });
    pool.run_tasks((size_t)ntiles, task);
  } else {
    for (int u = 0; u < kblocks; ++u) pack_a_unit(u);
    for (int t = 0; t < ntiles; ++t) task(t, 0);
  }
}

// fused_block over row blocks of at most kMbMax rows (whole micro-panels), so
// the packed op(A) of a call stays bounded as in the fp32 GEMM (a 2048-token
// batch against a 14336-wide weight would otherwise pack 117 MiB at once).
// Each output row's operations do not depend on the block it falls in.
void fused_gemm(const KernelSet& ks, ThreadPool& pool, halfk::WidenFn widen, HalfLayout layout, int M,
                const float* A, int lda, const HalfWeight& W, float alpha, float beta, float* C, int ldc) {
  const int rows = std::max(1, kMbMax / ks.mr) * ks.mr;
  for (int m0 = 0; m0 < M; m0 += rows)
    fused_block(ks, pool, widen, layout, std::min(rows, M - m0), A + (size_t)m0 * lda, lda, W, alpha, beta,
                C + (size_t)m0 * ldc, ldc);
}

// fn(begin, end) over [0, n) split over the pool when the GEMV is large enough.
template <typename Fn>
void gemv_split(ThreadPool& pool, double fmas, size_t n, Fn&& fn) {
  if (pool.size() > 1 && fmas >= kGemvParallelMinFmas)
    pool.parallel_for(n, [&](size_t b, size_t e, int) { fn(b, e); });
  else
    fn(size_t{0}, n);
}

// nt, M == 1: Y[0, j] = alpha * dot(x, W[j, :]) (+ Y), the kernel set's dot_rows.
void gemv_nt(const KernelSet& ks, ThreadPool& pool, halfk::Isa isa, halfk::WidenFn widen, const float* x,
             const HalfWeight& W, float alpha, bool accumulate, float* y) {
  const int N = W.rows, K = W.cols;
#if defined(PS_HAVE_AVX2_KERNELS)
  // The AVX2 and AVX-512 sets share gemm_avx2.cpp's dot_rows, which the fused forms reproduce.
  if (isa != halfk::Isa::Portable && ks.dot_rows == gemm::avx2_kernels().dot_rows &&
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
void via_fp32(const KernelSet& ks, ThreadPool& pool, halfk::WidenFn widen, HalfLayout layout, int M,
              const float* A, int lda, const HalfWeight& W, float alpha, float beta, float* C, int ldc) {
  float* w = t_whole.get((size_t)W.numel() + 1);
  widen(W.data, (size_t)W.numel(), w);
  if (layout == HalfLayout::NT)
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
  if (W.rows == 1 || W.cols == 1) return via_fp32(ks, pool, widen, HalfLayout::NT, M, X, ldx, W, alpha, beta, Y, ldy);
  if (M == 1) return gemv_nt(ks, pool, isa, widen, X, W, alpha, beta != 0.0f, Y);
  fused_gemm(ks, pool, widen, HalfLayout::NT, M, X, ldx, W, alpha, beta, Y, ldy);
}

void half_gemm_nn(const gemm::KernelSet& ks, ThreadPool& pool, Isa isa, int M, const float* dY, int lddy,
                  const HalfWeight& W, float alpha, float beta, float* dX, int lddx) {
  half_check_gemm_args("half_gemm_nn", M, W, lddy, W.rows, lddx, W.cols, beta);
  if (M == 0 || W.cols == 0) return;
  if (W.rows == 0 || alpha == 0.0f) return zero_or_keep(M, W.cols, beta, dX, lddx);
  const WidenFn widen = widen_for(isa, W.bf16);
  if (W.cols == 1) return via_fp32(ks, pool, widen, HalfLayout::NN, M, dY, lddy, W, alpha, beta, dX, lddx);
  if (M == 1) return gemv_nn(ks, pool, widen, dY, W, alpha, beta != 0.0f, dX);
  fused_gemm(ks, pool, widen, HalfLayout::NN, M, dY, lddy, W, alpha, beta, dX, lddx);
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
