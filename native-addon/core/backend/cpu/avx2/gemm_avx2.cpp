// AVX2/FMA kernels of the CPU GEMM: a 6x16 micro-kernel (12 ymm accumulators,
// two loads of op(B) and six broadcasts of op(A) per k step), the packing
// routines of the three layouts, and the two GEMV shapes.
//
// Compiled with -mavx2 -mfma; entered only after the run-time CPU check. All
// helpers have internal linkage and no standard-library templates are used,
// so no AVX2-compiled copy of a shared inline function can be picked by the
// linker for portable code.
#include <immintrin.h>

#include <cstdint>

#include "../gemm_kernels.h"
#include "gemm_avx_common.h"

namespace ps {
namespace gemm {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

// ---- packing --------------------------------------------------------------

// One full panel, 8 k steps, rows contiguous along k (nn/nt): transpose the
// six rows with two zero rows. Each 8-wide store spills two floats into the
// next slot, which the next store (or the tail, or the next panel) overwrites.
void pack_a_k8(const float* src, ptrdiff_t rs, float* d) {
  const __m256 x0 = _mm256_loadu_ps(src), x1 = _mm256_loadu_ps(src + rs);
  const __m256 x2 = _mm256_loadu_ps(src + 2 * rs), x3 = _mm256_loadu_ps(src + 3 * rs);
  const __m256 x4 = _mm256_loadu_ps(src + 4 * rs), x5 = _mm256_loadu_ps(src + 5 * rs);
  const __m256 zero = _mm256_setzero_ps();
  transpose8_store(x0, x1, x2, x3, x4, x5, zero, zero, d, MR);
}

// ---- micro-kernel -----------------------------------------------------------

// Output row: c = accumulate ? fma(alpha, acc, c) : alpha * acc, the formula
// of update_scalar for the partial tiles.
inline void update_row(float* c, __m256 lo, __m256 hi, __m256 va, bool accumulate) {
  if (accumulate) {
    _mm256_storeu_ps(c, _mm256_fmadd_ps(va, lo, _mm256_loadu_ps(c)));
    _mm256_storeu_ps(c + 8, _mm256_fmadd_ps(va, hi, _mm256_loadu_ps(c + 8)));
  } else {
    _mm256_storeu_ps(c, _mm256_mul_ps(va, lo));
    _mm256_storeu_ps(c + 8, _mm256_mul_ps(va, hi));
  }
}

void micro_6x16(int kc, const float* a, const float* b, float alpha, bool accumulate, float* c,
                ptrdiff_t ldc, int rows, int cols) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  prefetch_c_tile(c, ldc, rows, NR);

#pragma GCC unroll 4
  for (int p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += MR;
    b += NR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  if (rows == MR && cols == NR) {
    update_row(c + 0 * ldc, c00, c01, va, accumulate);
    update_row(c + 1 * ldc, c10, c11, va, accumulate);
    update_row(c + 2 * ldc, c20, c21, va, accumulate);
    update_row(c + 3 * ldc, c30, c31, va, accumulate);
    update_row(c + 4 * ldc, c40, c41, va, accumulate);
    update_row(c + 5 * ldc, c50, c51, va, accumulate);
    return;
  }
  alignas(32) float acc[MR][NR];
  _mm256_store_ps(acc[0], c00), _mm256_store_ps(acc[0] + 8, c01);
  _mm256_store_ps(acc[1], c10), _mm256_store_ps(acc[1] + 8, c11);
  _mm256_store_ps(acc[2], c20), _mm256_store_ps(acc[2] + 8, c21);
  _mm256_store_ps(acc[3], c30), _mm256_store_ps(acc[3] + 8, c31);
  _mm256_store_ps(acc[4], c40), _mm256_store_ps(acc[4] + 8, c41);
  _mm256_store_ps(acc[5], c50), _mm256_store_ps(acc[5] + 8, c51);
  update_scalar(&acc[0][0], NR, alpha, accumulate, c, ldc, rows, cols);
}

// Narrow tiles (cols <= 8): one ymm of op(B) per k step against up to twelve
// rows (two packed panels), so the FMA units see twelve independent chains.
// Named accumulators, not an array: GCC keeps an array of __m256 in memory.
template <bool kTwoPanels>
void micro_narrow_impl(int kc, const float* a, const float* b, float alpha, bool accumulate,
                       float* c, ptrdiff_t ldc, int rows, int cols) {
  const float* a1 = a + (ptrdiff_t)MR * kc;
  __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps();
  __m256 c3 = _mm256_setzero_ps(), c4 = _mm256_setzero_ps(), c5 = _mm256_setzero_ps();
  __m256 c6 = _mm256_setzero_ps(), c7 = _mm256_setzero_ps(), c8 = _mm256_setzero_ps();
  __m256 c9 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, c0);
    c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, c1);
    c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, c2);
    c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, c3);
    c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, c4);
    c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, c5);
    if (kTwoPanels) {
      c6 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + 0), b0, c6);
      c7 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + 1), b0, c7);
      c8 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + 2), b0, c8);
      c9 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + 3), b0, c9);
      c10 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + 4), b0, c10);
      c11 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + 5), b0, c11);
    }
    a += MR;
    a1 += MR;
    b += NR;
  }
  alignas(32) float out[2 * MR][8];
  _mm256_store_ps(out[0], c0), _mm256_store_ps(out[1], c1), _mm256_store_ps(out[2], c2);
  _mm256_store_ps(out[3], c3), _mm256_store_ps(out[4], c4), _mm256_store_ps(out[5], c5);
  _mm256_store_ps(out[6], c6), _mm256_store_ps(out[7], c7), _mm256_store_ps(out[8], c8);
  _mm256_store_ps(out[9], c9), _mm256_store_ps(out[10], c10), _mm256_store_ps(out[11], c11);
  update_scalar(&out[0][0], 8, alpha, accumulate, c, ldc, rows, cols);
}

void micro_narrow(int kc, const float* a, const float* b, float alpha, bool accumulate, float* c,
                  ptrdiff_t ldc, int rows, int cols) {
  if (rows > MR)
    micro_narrow_impl<true>(kc, a, b, alpha, accumulate, c, ldc, rows, cols);
  else
    micro_narrow_impl<false>(kc, a, b, alpha, accumulate, c, ldc, rows, cols);
}

// ---- GEMV -----------------------------------------------------------------

// Dot products with a fixed summation order per row, whichever group of
// rows it is computed in: 16-float steps into two partial sums (even and odd
// 8-float halves), a last 8-float step into the first, a scalar tail, then
// hsum(s0 + s1) + tail. Four rows at a time share the loads of x.
//
// With kPrefetchNext, each 16-float step also prefetches the same columns of
// the next group's rows (R * ldw floats ahead; dot_rows passes it only when
// that group exists). In generation the weights stream from DRAM and the
// hardware prefetcher alone leaves a core short of requests in flight
// (it restarts at every 4 KiB page); asking for the next group's lines a
// group ahead keeps the stream going. Prefetches change no value.
template <int R, bool kPrefetchNext = false>
inline void dot_group(int k, float alpha, const float* x, const float* w, ptrdiff_t ldw,
                      bool accumulate, float* y, ptrdiff_t incy) {
  __m256 s0[R], s1[R];
  for (int r = 0; r < R; ++r) s0[r] = s1[r] = _mm256_setzero_ps();
  int p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + p), x1 = _mm256_loadu_ps(x + p + 8);
    for (int r = 0; r < R; ++r) {
      if (kPrefetchNext) prefetch_line(w + (r + R) * ldw + p);
      s0[r] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w + r * ldw + p), s0[r]);
      s1[r] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(w + r * ldw + p + 8), s1[r]);
    }
  }
  if (p + 8 <= k) {
    const __m256 x0 = _mm256_loadu_ps(x + p);
    for (int r = 0; r < R; ++r)
      s0[r] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(w + r * ldw + p), s0[r]);
    p += 8;
  }
  for (int r = 0; r < R; ++r) {
    const float* wr = w + r * ldw;
    float tail = 0.0f;
    for (int q = p; q < k; ++q) tail = fmadd1(x[q], wr[q], tail);
    const float dot = hsum(_mm256_add_ps(s0[r], s1[r])) + tail;
    float& out = y[r * incy];
    out = accumulate ? fmadd1(alpha, dot, out) : alpha * dot;
  }
}

void dot_rows(int n, int k, float alpha, const float* x, const float* w, ptrdiff_t ldw,
              bool accumulate, float* y, ptrdiff_t incy) {
  int j = 0;
  for (; j + 8 <= n; j += 4)
    dot_group<4, true>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j + 4 <= n; j += 4)
    dot_group<4>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j < n; ++j) dot_group<1>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
}

void axpy_rows(int n, int k, float alpha, const float* x, ptrdiff_t incx, const float* w,
               ptrdiff_t ldw, bool accumulate, float* y) {
  const __m256 va = _mm256_set1_ps(alpha);
  int j0 = 0;
  // 64 columns at a time in eight accumulators, one pass over the k rows.
  for (; j0 + 64 <= n; j0 += 64) {
    __m256 acc[8];
    for (int q = 0; q < 8; ++q) acc[q] = _mm256_setzero_ps();
    const float* wp = w + j0;
    for (int p = 0; p < k; ++p, wp += ldw) {
      const __m256 xp = _mm256_set1_ps(x[p * incx]);
      for (int q = 0; q < 8; ++q) acc[q] = _mm256_fmadd_ps(xp, _mm256_loadu_ps(wp + 8 * q), acc[q]);
    }
    for (int q = 0; q < 8; ++q) {
      float* yq = y + j0 + 8 * q;
      _mm256_storeu_ps(yq, accumulate ? _mm256_fmadd_ps(va, acc[q], _mm256_loadu_ps(yq))
                                      : _mm256_mul_ps(va, acc[q]));
    }
  }
  for (; j0 + 8 <= n; j0 += 8) {
    __m256 acc = _mm256_setzero_ps();
    const float* wp = w + j0;
    for (int p = 0; p < k; ++p, wp += ldw)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(x[p * incx]), _mm256_loadu_ps(wp), acc);
    float* yq = y + j0;
    _mm256_storeu_ps(yq, accumulate ? _mm256_fmadd_ps(va, acc, _mm256_loadu_ps(yq))
                                    : _mm256_mul_ps(va, acc));
  }
  for (; j0 < n; ++j0) {
    float acc = 0.0f;
    for (int p = 0; p < k; ++p) acc = fmadd1(x[p * incx], w[p * ldw + j0], acc);
    y[j0] = accumulate ? fmadd1(alpha, acc, y[j0]) : alpha * acc;
  }
}

}  // namespace

const KernelSet& avx2_kernels() {
  static const KernelSet set = {"avx2",
                                MR,
                                NR,
                                384,
                                pack_a_panels<MR, pack_a_k8>,
                                pack_b_panels<NR>,
                                micro_6x16,
                                micro_narrow,
                                dot_rows,
                                axpy_rows};
  return set;
}

}  // namespace gemm
}  // namespace ps
