// AVX-512F kernels of the CPU GEMM, for the CPUs that have it (Intel server
// parts since Skylake-SP, Ice/Tiger Lake, AMD Zen 4+): the same blocked
// driver with a 12x32 micro-kernel, 24 zmm accumulators — twice the work per
// instruction of the AVX2 6x16 kernel — and the row-dot GEMV of generation in
// zmm registers with the AVX2 form's exact summation order (the other GEMV
// shape stays on the AVX2 kernel).
//
// This file sits with the AVX2 sources (built with -mavx2 -mfma) and enables
// AVX-512F per function with a target attribute, so it needs no build flag of
// its own; it is entered only after avx512_supported() said yes. Like the AVX2
// file, everything is internal and no standard-library template is used.
#include <immintrin.h>

#include "../gemm_kernels.h"
#include "gemm_avx_common.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define PS_GEMM_AVX512 1
#define PS_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

namespace ps {
namespace gemm {

#if defined(PS_GEMM_AVX512)

namespace {

constexpr int MR = 12;
constexpr int NR = 32;

// ---- packing (AVX2 instructions suffice) -----------------------------------

// One full panel, 8 k steps, rows contiguous along k (nn/nt): transpose rows
// 0-7 and rows 8-11 (padded with zero rows) and interleave them.
void pack_a_k8(const float* s, ptrdiff_t rs, float* d) {
  __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + rs);
  __m256 x2 = _mm256_loadu_ps(s + 2 * rs), x3 = _mm256_loadu_ps(s + 3 * rs);
  __m256 x4 = _mm256_loadu_ps(s + 4 * rs), x5 = _mm256_loadu_ps(s + 5 * rs);
  __m256 x6 = _mm256_loadu_ps(s + 6 * rs), x7 = _mm256_loadu_ps(s + 7 * rs);
  __m256 y0 = _mm256_loadu_ps(s + 8 * rs), y1 = _mm256_loadu_ps(s + 9 * rs);
  __m256 y2 = _mm256_loadu_ps(s + 10 * rs), y3 = _mm256_loadu_ps(s + 11 * rs);
  __m256 y4 = _mm256_setzero_ps(), y5 = y4, y6 = y4, y7 = y4;
  transpose8(x0, x1, x2, x3, x4, x5, x6, x7);
  transpose8(y0, y1, y2, y3, y4, y5, y6, y7);
  const __m256 lo[8] = {x0, x1, x2, x3, x4, x5, x6, x7};
  const __m256 hi[8] = {y0, y1, y2, y3, y4, y5, y6, y7};
  for (int q = 0; q < 8; ++q) {
    _mm256_storeu_ps(d + q * MR, lo[q]);
    _mm_storeu_ps(d + q * MR + 8, _mm256_castps256_ps128(hi[q]));
  }
}

// ---- micro-kernels ------------------------------------------------------------

PS_TARGET_AVX512 inline void update_row(float* c, __m512 lo, __m512 hi, __m512 va,
                                        bool accumulate) {
  if (accumulate) {
    _mm512_storeu_ps(c, _mm512_fmadd_ps(va, lo, _mm512_loadu_ps(c)));
    _mm512_storeu_ps(c + 16, _mm512_fmadd_ps(va, hi, _mm512_loadu_ps(c + 16)));
  } else {
    _mm512_storeu_ps(c, _mm512_mul_ps(va, lo));
    _mm512_storeu_ps(c + 16, _mm512_mul_ps(va, hi));
  }
}

// One row of the 12x32 kernel: broadcast a[i], two FMAs.
#define PS_ROW(i)                                 \
  {                                               \
    const __m512 av = _mm512_set1_ps(a[i]);       \
    c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);   \
    c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);   \
  }

PS_TARGET_AVX512 void micro_12x32(int kc, const float* a, const float* b, float alpha,
                                  bool accumulate, float* c, ptrdiff_t ldc, int rows, int cols) {
  // Named accumulators (GCC keeps an array of vectors in memory).
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00;
  __m512 c90 = c00, c91 = c00;
  __m512 cA0 = c00, cA1 = c00, cB0 = c00, cB1 = c00;
  prefetch_c_tile(c, ldc, rows, NR);
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    PS_ROW(0) PS_ROW(1) PS_ROW(2) PS_ROW(3) PS_ROW(4) PS_ROW(5)
    PS_ROW(6) PS_ROW(7) PS_ROW(8) PS_ROW(9)
    {
      const __m512 av = _mm512_set1_ps(a[10]);
      cA0 = _mm512_fmadd_ps(av, b0, cA0);
      cA1 = _mm512_fmadd_ps(av, b1, cA1);
    }
    {
      const __m512 av = _mm512_set1_ps(a[11]);
      cB0 = _mm512_fmadd_ps(av, b0, cB0);
      cB1 = _mm512_fmadd_ps(av, b1, cB1);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (rows == MR && cols == NR) {
    update_row(c + 0 * ldc, c00, c01, va, accumulate);
    update_row(c + 1 * ldc, c10, c11, va, accumulate);
    update_row(c + 2 * ldc, c20, c21, va, accumulate);
    update_row(c + 3 * ldc, c30, c31, va, accumulate);
    update_row(c + 4 * ldc, c40, c41, va, accumulate);
    update_row(c + 5 * ldc, c50, c51, va, accumulate);
    update_row(c + 6 * ldc, c60, c61, va, accumulate);
    update_row(c + 7 * ldc, c70, c71, va, accumulate);
    update_row(c + 8 * ldc, c80, c81, va, accumulate);
    update_row(c + 9 * ldc, c90, c91, va, accumulate);
    update_row(c + 10 * ldc, cA0, cA1, va, accumulate);
    update_row(c + 11 * ldc, cB0, cB1, va, accumulate);
    return;
  }
  alignas(64) float acc[MR][NR];
  _mm512_store_ps(acc[0], c00), _mm512_store_ps(acc[0] + 16, c01);
  _mm512_store_ps(acc[1], c10), _mm512_store_ps(acc[1] + 16, c11);
  _mm512_store_ps(acc[2], c20), _mm512_store_ps(acc[2] + 16, c21);
  _mm512_store_ps(acc[3], c30), _mm512_store_ps(acc[3] + 16, c31);
  _mm512_store_ps(acc[4], c40), _mm512_store_ps(acc[4] + 16, c41);
  _mm512_store_ps(acc[5], c50), _mm512_store_ps(acc[5] + 16, c51);
  _mm512_store_ps(acc[6], c60), _mm512_store_ps(acc[6] + 16, c61);
  _mm512_store_ps(acc[7], c70), _mm512_store_ps(acc[7] + 16, c71);
  _mm512_store_ps(acc[8], c80), _mm512_store_ps(acc[8] + 16, c81);
  _mm512_store_ps(acc[9], c90), _mm512_store_ps(acc[9] + 16, c91);
  _mm512_store_ps(acc[10], cA0), _mm512_store_ps(acc[10] + 16, cA1);
  _mm512_store_ps(acc[11], cB0), _mm512_store_ps(acc[11] + 16, cB1);
  update_scalar(&acc[0][0], NR, alpha, accumulate, c, ldc, rows, cols);
}
#undef PS_ROW

// Narrow tiles (cols <= 16): one zmm of op(B) per k step against up to 24
// rows (two packed panels): 24 independent FMA chains.
#define PS_NROW(acc, ptr, i) acc = _mm512_fmadd_ps(_mm512_set1_ps(ptr[i]), b0, acc);

template <bool kTwoPanels>
PS_TARGET_AVX512 void micro_narrow_impl(int kc, const float* a, const float* b, float alpha,
                                        bool accumulate, float* c, ptrdiff_t ldc, int rows,
                                        int cols) {
  const float* a1 = a + (ptrdiff_t)MR * kc;
  __m512 x0 = _mm512_setzero_ps(), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0;
  __m512 x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
  __m512 y0 = x0, y1 = x0, y2 = x0, y3 = x0, y4 = x0, y5 = x0;
  __m512 y6 = x0, y7 = x0, y8 = x0, y9 = x0, y10 = x0, y11 = x0;
  for (int p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    PS_NROW(x0, a, 0) PS_NROW(x1, a, 1) PS_NROW(x2, a, 2) PS_NROW(x3, a, 3)
    PS_NROW(x4, a, 4) PS_NROW(x5, a, 5) PS_NROW(x6, a, 6) PS_NROW(x7, a, 7)
    PS_NROW(x8, a, 8) PS_NROW(x9, a, 9) PS_NROW(x10, a, 10) PS_NROW(x11, a, 11)
    if (kTwoPanels) {
      PS_NROW(y0, a1, 0) PS_NROW(y1, a1, 1) PS_NROW(y2, a1, 2) PS_NROW(y3, a1, 3)
      PS_NROW(y4, a1, 4) PS_NROW(y5, a1, 5) PS_NROW(y6, a1, 6) PS_NROW(y7, a1, 7)
      PS_NROW(y8, a1, 8) PS_NROW(y9, a1, 9) PS_NROW(y10, a1, 10) PS_NROW(y11, a1, 11)
    }
    a += MR;
    a1 += MR;
    b += NR;
  }
  alignas(64) float out[2 * MR][16];
  _mm512_store_ps(out[0], x0), _mm512_store_ps(out[1], x1), _mm512_store_ps(out[2], x2);
  _mm512_store_ps(out[3], x3), _mm512_store_ps(out[4], x4), _mm512_store_ps(out[5], x5);
  _mm512_store_ps(out[6], x6), _mm512_store_ps(out[7], x7), _mm512_store_ps(out[8], x8);
  _mm512_store_ps(out[9], x9), _mm512_store_ps(out[10], x10), _mm512_store_ps(out[11], x11);
  _mm512_store_ps(out[12], y0), _mm512_store_ps(out[13], y1), _mm512_store_ps(out[14], y2);
  _mm512_store_ps(out[15], y3), _mm512_store_ps(out[16], y4), _mm512_store_ps(out[17], y5);
  _mm512_store_ps(out[18], y6), _mm512_store_ps(out[19], y7), _mm512_store_ps(out[20], y8);
  _mm512_store_ps(out[21], y9), _mm512_store_ps(out[22], y10), _mm512_store_ps(out[23], y11);
  update_scalar(&out[0][0], 16, alpha, accumulate, c, ldc, rows, cols);
}
#undef PS_NROW

PS_TARGET_AVX512 void micro_narrow(int kc, const float* a, const float* b, float alpha,
                                   bool accumulate, float* c, ptrdiff_t ldc, int rows, int cols) {
  if (rows > MR)
    micro_narrow_impl<true>(kc, a, b, alpha, accumulate, c, ldc, rows, cols);
  else
    micro_narrow_impl<false>(kc, a, b, alpha, accumulate, c, ldc, rows, cols);
}

// ---- GEMV ---------------------------------------------------------------------

// gemm_avx2.cpp's dot_group<R> with one zmm per row: lanes 0..7 are its s0
// and lanes 8..15 its s1, so each 16-float step is the AVX2 form's two FMAs
// in one instruction, one load of a whole cache line of the row; the 8-float
// step updates lanes 0..7 only (masked), and the end adds the two halves and
// reduces exactly as the AVX2 form does. Every lane sees the same operations
// in the same order: the same bits as the AVX2 kernel set's dot_rows, with
// one load per 64-byte line of W instead of two. kPrefetchNext: as in the
// AVX2 form, the next group's lines a group ahead.
template <int R, bool kPrefetchNext>
PS_TARGET_AVX512 inline void dot_group_512(int k, float alpha, const float* x, const float* w,
                                           ptrdiff_t ldw, bool accumulate, float* y,
                                           ptrdiff_t incy) {
  __m512 s[R];
  for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_ps();
  int p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m512 xv = _mm512_loadu_ps(x + p);
    for (int r = 0; r < R; ++r) {
      if (kPrefetchNext) prefetch_line(w + (r + R) * ldw + p);
      s[r] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + r * ldw + p), s[r]);
    }
  }
  if (p + 8 <= k) {
    const __m512 xv = _mm512_maskz_loadu_ps(0x00FF, x + p);
    for (int r = 0; r < R; ++r)
      s[r] = _mm512_mask3_fmadd_ps(xv, _mm512_maskz_loadu_ps(0x00FF, w + r * ldw + p), s[r], 0x00FF);
    p += 8;
  }
  for (int r = 0; r < R; ++r) {
    const float* wr = w + r * ldw;
    float tail = 0.0f;
    for (int q = p; q < k; ++q) tail = fmadd1(x[q], wr[q], tail);
    // Through memory: GCC 12 warns falsely about the undefined upper half
    // the 512-to-256 casts and extracts pass through.
    alignas(64) float halves[16];  // lanes 0..7 = s0, 8..15 = s1
    _mm512_store_ps(halves, s[r]);
    const float dot = hsum(_mm256_add_ps(_mm256_load_ps(halves), _mm256_load_ps(halves + 8))) + tail;
    float& out = y[r * incy];
    out = accumulate ? fmadd1(alpha, dot, out) : alpha * dot;
  }
}

PS_TARGET_AVX512 void dot_rows(int n, int k, float alpha, const float* x, const float* w,
                               ptrdiff_t ldw, bool accumulate, float* y, ptrdiff_t incy) {
  int j = 0;
  for (; j + 8 <= n; j += 4)
    dot_group_512<4, true>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j + 4 <= n; j += 4)
    dot_group_512<4, false>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j < n; ++j)
    dot_group_512<1, false>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
}

}  // namespace

bool avx512_supported() {
  // libgcc's check includes the OS having enabled the zmm register state.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
}

const KernelSet& avx512_kernels() {
  static const KernelSet set = [] {
    KernelSet s = avx2_kernels();  // axpy_rows (the other GEMV shape) stays AVX2
    s.name = "avx512";
    s.mr = MR;
    s.nr = NR;
    s.kc_max = 256;  // 32 KiB panel of op(B)
    s.pack_a = pack_a_panels<MR, pack_a_k8>;
    s.pack_b = pack_b_panels<NR>;
    s.micro = micro_12x32;
    s.micro_narrow = micro_narrow;
    s.dot_rows = dot_rows;
    return s;
  }();
  return set;
}

#else  // no GCC-style target attributes: the AVX2 kernels serve

bool avx512_supported() { return false; }
const KernelSet& avx512_kernels() { return avx2_kernels(); }

#endif

}  // namespace gemm
}  // namespace ps
