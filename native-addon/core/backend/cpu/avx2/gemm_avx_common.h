// AVX2/FMA pieces shared by the GEMM kernel files (gemm_avx2.cpp,
// gemm_avx512.cpp), both compiled with -mavx2 -mfma: small helpers and the
// packing routines, templates on the tile sizes (the AVX2 instructions used
// in packing serve the AVX-512 kernels as well). Internal linkage on purpose
// (`static inline`, an anonymous namespace for the templates): each
// translation unit keeps its own copy, so no AVX-compiled function can ever
// be linked into portable code.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace ps {
namespace gemm {

// Scalar fused multiply-add, bit-identical to one lane of _mm256_fmadd_ps.
static inline float fmadd1(float a, float b, float c) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// The sum of the eight lanes in a fixed order (the GEMVs' final reduction).
static inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// In-register transpose of an 8x8 block: on return r[q] holds column q.
static inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4,
                              __m256& r5, __m256& r6, __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
  r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
  r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
  r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
  r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Transposes the 8x8 block whose rows are x0..x7 and stores its columns at
// d, d + ld, ..., d + 7 * ld.
static inline void transpose8_store(__m256 x0, __m256 x1, __m256 x2, __m256 x3, __m256 x4,
                                    __m256 x5, __m256 x6, __m256 x7, float* d, ptrdiff_t ld) {
  transpose8(x0, x1, x2, x3, x4, x5, x6, x7);
  _mm256_storeu_ps(d + 0 * ld, x0);
  _mm256_storeu_ps(d + 1 * ld, x1);
  _mm256_storeu_ps(d + 2 * ld, x2);
  _mm256_storeu_ps(d + 3 * ld, x3);
  _mm256_storeu_ps(d + 4 * ld, x4);
  _mm256_storeu_ps(d + 5 * ld, x5);
  _mm256_storeu_ps(d + 6 * ld, x6);
  _mm256_storeu_ps(d + 7 * ld, x7);
}

static inline int imin(int a, int b) { return a < b ? a : b; }

// Asks for the cache line holding p in every level (the GEMVs' stream ahead).
static inline void prefetch_line(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0);
}

// Prefetch the C rows of a tile, for the update after the k loop.
static inline void prefetch_c_tile(const float* c, ptrdiff_t ldc, int rows, int nr) {
  for (int i = 0; i < rows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + nr - 1), _MM_HINT_T0);
  }
}

// Partial tiles: c = accumulate ? fma(alpha, acc, c) : alpha * acc, one lane
// at a time: the formula of the vector update, so a value never depends on
// whether its tile was full.
static inline void update_scalar(const float* acc, int acc_ld, float alpha, bool accumulate,
                                 float* c, ptrdiff_t ldc, int rows, int cols) {
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    const float* ai = acc + i * acc_ld;
    for (int j = 0; j < cols; ++j)
      ci[j] = accumulate ? fmadd1(alpha, ai[j], ci[j]) : alpha * ai[j];
  }
}

namespace {

// Copies N contiguous floats (N even: 8-float, then 4- and 2-float moves).
template <int N>
inline void copy_floats(float* d, const float* s) {
  static_assert(N % 2 == 0, "copy_floats: N must be even");
  int i = 0;
  for (; i + 8 <= N; i += 8) _mm256_storeu_ps(d + i, _mm256_loadu_ps(s + i));
  if (N - i >= 4) {
    _mm_storeu_ps(d + i, _mm_loadu_ps(s + i));
    i += 4;
  }
  if (N - i >= 2)
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + i),
                     _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i)));
}

// Packs rows x kc of op(A) (element (i, p) at a[i * rs + p * cs]) into panels
// of MR rows, k-major: panel[p * MR + i]; a last partial panel is zero-padded.
// PackK8 packs one full panel's 8 k steps when the rows run along k (cs == 1,
// nn/nt): an in-register transpose that depends on MR, kept in each kernel
// file; it may write past its 8 * MR floats into the next k step's slots.
template <int MR, void (*PackK8)(const float* src, ptrdiff_t rs, float* dst)>
void pack_a_panels(const float* a, ptrdiff_t rs, ptrdiff_t cs, int rows, int kc, float* dst) {
  for (int i0 = 0; i0 < rows; i0 += MR, dst += (ptrdiff_t)MR * kc) {
    const float* src = a + i0 * rs;
    const int h = imin(MR, rows - i0);
    if (h == MR && cs == 1) {
      int p = 0;
      for (; p + 8 <= kc; p += 8) PackK8(src + p, rs, dst + p * MR);
      for (; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[i * rs + p];
    } else if (h == MR && rs == 1) {
      // tn: the MR values of one k are contiguous.
      for (int p = 0; p < kc; ++p) copy_floats<MR>(dst + p * MR, src + p * cs);
    } else {
      for (int p = 0; p < kc; ++p) {
        float* d = dst + p * MR;
        int i = 0;
        for (; i < h; ++i) d[i] = src[i * rs + p * cs];
        for (; i < MR; ++i) d[i] = 0.0f;
      }
    }
  }
}

// Packs kc x cols of op(B) (element (p, j) at b[p * rs + j * cs]) into panels
// of NR columns (NR a multiple of 8), row-major: panel[p * NR + j]; a last
// partial panel is zero-padded. dst is 32-byte aligned.
template <int NR>
void pack_b_panels(const float* b, ptrdiff_t rs, ptrdiff_t cs, int kc, int cols, float* dst) {
  static_assert(NR % 8 == 0, "pack_b_panels: NR must be a multiple of 8");
  for (int j0 = 0; j0 < cols; j0 += NR, dst += (ptrdiff_t)NR * kc) {
    const float* src = b + j0 * cs;
    const int w = imin(NR, cols - j0);
    if (w == NR && cs == 1) {
      // nn/tn: a row of op(B) is NR contiguous floats.
      for (int p = 0; p < kc; ++p) {
        const float* s = src + p * rs;
        float* d = dst + p * NR;
#pragma GCC unroll 4
        for (int q = 0; q < NR; q += 8) _mm256_store_ps(d + q, _mm256_loadu_ps(s + q));
      }
    } else if (w == NR && rs == 1) {
      // nt: column j of op(B) is row j of B; NR / 8 8x8 transposes per 8 k.
      int p = 0;
      for (; p + 8 <= kc; p += 8) {
        for (int part = 0; part < NR / 8; ++part) {
          const float* s = src + (part * 8) * cs + p;
          __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + cs);
          __m256 x2 = _mm256_loadu_ps(s + 2 * cs), x3 = _mm256_loadu_ps(s + 3 * cs);
          __m256 x4 = _mm256_loadu_ps(s + 4 * cs), x5 = _mm256_loadu_ps(s + 5 * cs);
          __m256 x6 = _mm256_loadu_ps(s + 6 * cs), x7 = _mm256_loadu_ps(s + 7 * cs);
          transpose8_store(x0, x1, x2, x3, x4, x5, x6, x7, dst + p * NR + part * 8, NR);
        }
      }
      for (; p < kc; ++p)
        for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[j * cs + p];
    } else {
      for (int p = 0; p < kc; ++p) {
        float* d = dst + p * NR;
        int j = 0;
        for (; j < w; ++j) d[j] = src[p * rs + j * cs];
        for (; j < NR; ++j) d[j] = 0.0f;
      }
    }
  }
}

}  // namespace

}  // namespace gemm
}  // namespace ps
