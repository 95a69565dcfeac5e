// AVX2 / F16C pieces of the CPU 16-bit GEMMs (see ../half_kernels.h):
// widening runs of bfloat16 (a 16-bit shift of the zero-extended value) and
// IEEE half (vcvtph2ps), and the GEMV of generation that widens the weight in
// registers (AVX2; and AVX-512F per function through a target attribute, as
// gemm_avx512.cpp does). Compiled with -mavx2 -mfma -mf16c, entered only after
// the run-time checks; everything but the entry points has internal linkage, and
// model/half.h is not included, so no AVX-compiled copy of a shared inline
// function can be linked into portable code.
#include <immintrin.h>

#include <cstdint>

#include "../half_kernels.h"

namespace ps {
namespace halfk {
namespace {

inline __m256 load8_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline __m256 load8_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float scalar_bf16(uint16_t h) {
  return _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(static_cast<uint32_t>(h) << 16))));
}
inline float scalar_f16(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

// The helpers of gemm_avx2.cpp's dot product, spelled the same way.
inline float fmadd1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}
inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Prefetches w[at], the next group's row at column p (kPrefetchNext below):
// one prefetch per 64 bytes of 16-bit values, every other 16-value step.
inline void prefetch_next(const uint16_t* w, ptrdiff_t at, int p) {
  if ((p & 31) == 0) _mm_prefetch(reinterpret_cast<const char*>(w + at), _MM_HINT_T0);
}

// gemm_avx2.cpp's dot_group<R> with widening loads: 16-float steps into two
// partial sums, a last 8-float step into the first, a scalar tail, then
// hsum(s0 + s1) + tail. Four rows share the loads of x. kPrefetchNext: as
// there, the same columns of the next group's rows are prefetched a group
// ahead (the weights stream from DRAM in generation); values unchanged.
template <int R, bool kBf16, bool kPrefetchNext = false>
inline void dot_group(int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw, bool accumulate,
                      float* y, ptrdiff_t incy) {
  auto load8 = [](const uint16_t* p) { return kBf16 ? load8_bf16(p) : load8_f16(p); };
  __m256 s0[R], s1[R];
  for (int r = 0; r < R; ++r) s0[r] = s1[r] = _mm256_setzero_ps();
  int p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + p), x1 = _mm256_loadu_ps(x + p + 8);
    for (int r = 0; r < R; ++r) {
      if (kPrefetchNext) prefetch_next(w, (r + R) * ldw + p, p);
      s0[r] = _mm256_fmadd_ps(x0, load8(w + r * ldw + p), s0[r]);
      s1[r] = _mm256_fmadd_ps(x1, load8(w + r * ldw + p + 8), s1[r]);
    }
  }
  if (p + 8 <= k) {
    const __m256 x0 = _mm256_loadu_ps(x + p);
    for (int r = 0; r < R; ++r) s0[r] = _mm256_fmadd_ps(x0, load8(w + r * ldw + p), s0[r]);
    p += 8;
  }
  for (int r = 0; r < R; ++r) {
    const uint16_t* wr = w + r * ldw;
    float tail = 0.0f;
    for (int q = p; q < k; ++q) tail = fmadd1(x[q], kBf16 ? scalar_bf16(wr[q]) : scalar_f16(wr[q]), tail);
    const float dot = hsum(_mm256_add_ps(s0[r], s1[r])) + tail;
    float& out = y[r * incy];
    out = accumulate ? fmadd1(alpha, dot, out) : alpha * dot;
  }
}

template <bool kBf16>
void dot_rows_impl(int n, int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw, bool accumulate,
                   float* y, ptrdiff_t incy) {
  int j = 0;
  for (; j + 8 <= n; j += 4)
    dot_group<4, kBf16, true>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j + 4 <= n; j += 4) dot_group<4, kBf16>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j < n; ++j) dot_group<1, kBf16>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define PS_HALF_AVX512 1
#define PS_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

// The same dot product with one zmm per row: lanes 0..7 are dot_group's s0
// and lanes 8..15 its s1, so each 16-float step is the two 8-lane FMAs of
// the AVX2 form in one instruction (and one widening instead of two); the
// 8-float step updates lanes 0..7 only (a masked FMA), and the end adds the
// two halves and reduces exactly as hsum does. Every lane sees the same
// operations in the same order: the same bits.
template <int R, bool kBf16, bool kPrefetchNext = false>
PS_TARGET_AVX512 inline void dot_group_512(int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw,
                                            bool accumulate, float* y, ptrdiff_t incy) {
  __m512 s[R];
  for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_ps();
  int p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m512 xv = _mm512_loadu_ps(x + p);
    for (int r = 0; r < R; ++r) {
      if (kPrefetchNext) prefetch_next(w, (r + R) * ldw + p, p);
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * ldw + p));
      // The zero-masked forms (full mask) spare GCC 12's false "may be used
      // uninitialized" on the unmasked intrinsics' undefined pass-through.
      const __m512 wv = kBf16 ? _mm512_castsi512_ps(_mm512_maskz_slli_epi32(
                                    0xFFFF, _mm512_maskz_cvtepu16_epi32(0xFFFF, h), 16))
                              : _mm512_maskz_cvtph_ps(0xFFFF, h);
      s[r] = _mm512_fmadd_ps(xv, wv, s[r]);
    }
  }
  if (p + 8 <= k) {
    const __m512 xv = _mm512_castps256_ps512(_mm256_loadu_ps(x + p));
    for (int r = 0; r < R; ++r) {
      const __m512 wv = _mm512_castps256_ps512(kBf16 ? load8_bf16(w + r * ldw + p) : load8_f16(w + r * ldw + p));
      s[r] = _mm512_mask3_fmadd_ps(xv, wv, s[r], 0x00FF);
    }
    p += 8;
  }
  for (int r = 0; r < R; ++r) {
    const uint16_t* wr = w + r * ldw;
    float tail = 0.0f;
    for (int q = p; q < k; ++q) tail = fmadd1(x[q], kBf16 ? scalar_bf16(wr[q]) : scalar_f16(wr[q]), tail);
    alignas(64) float halves[16];  // lanes 0..7 = s0, 8..15 = s1
    _mm512_store_ps(halves, s[r]);
    const __m256 lo = _mm256_load_ps(halves), hi = _mm256_load_ps(halves + 8);
    const float dot = hsum(_mm256_add_ps(lo, hi)) + tail;
    float& out = y[r * incy];
    out = accumulate ? fmadd1(alpha, dot, out) : alpha * dot;
  }
}

template <bool kBf16>
PS_TARGET_AVX512 void dot_rows_512(int n, int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw,
                                   bool accumulate, float* y, ptrdiff_t incy) {
  int j = 0;
  for (; j + 8 <= n; j += 4)
    dot_group_512<4, kBf16, true>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j + 4 <= n; j += 4) dot_group_512<4, kBf16>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
  for (; j < n; ++j) dot_group_512<1, kBf16>(k, alpha, x, w + j * ldw, ldw, accumulate, y + j * incy, incy);
}
#endif

}  // namespace

void dot_rows_avx512(int n, int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw, bool bf16,
                     bool accumulate, float* y, ptrdiff_t incy) {
#if defined(PS_HALF_AVX512)
  if (bf16)
    dot_rows_512<true>(n, k, alpha, x, w, ldw, accumulate, y, incy);
  else
    dot_rows_512<false>(n, k, alpha, x, w, ldw, accumulate, y, incy);
#else
  dot_rows_avx2(n, k, alpha, x, w, ldw, bf16, accumulate, y, incy);
#endif
}

void widen_bf16_avx2(const uint16_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_bf16(src + i));
  for (; i < n; ++i) dst[i] = scalar_bf16(src[i]);
}

void widen_f16_f16c(const uint16_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_f16(src + i));
  for (; i < n; ++i) dst[i] = scalar_f16(src[i]);
}

void dot_rows_avx2(int n, int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw, bool bf16,
                   bool accumulate, float* y, ptrdiff_t incy) {
  if (bf16)
    dot_rows_impl<true>(n, k, alpha, x, w, ldw, accumulate, y, incy);
  else
    dot_rows_impl<false>(n, k, alpha, x, w, ldw, accumulate, y, incy);
}

}  // namespace halfk
}  // namespace ps
