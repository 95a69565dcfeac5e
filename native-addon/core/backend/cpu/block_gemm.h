// Products of small blocks that already sit in cache (the attention kernels'
// Q·K^T, P·V, P^T·dO, ... on 32x64 tiles): C[M,N] (+)= A[M,K] · B[K,N], B and
// C row-major with row strides, A read through two strides so the same code
// reads A plain (A[r*lda + k]) or transposed (A[k*lda + r], the backward's
// P^T and dS^T without writing a transposed copy). Register tiles of up to
// kBlockMR x kBlockNR accumulators, written with intrinsics: left to itself
// the compiler vectorised a plain-loop tile along k with shuffles once it was
// inlined (5x slower).
//
// The tile follows the instruction set the including file is compiled for:
//   AVX-512F (avx2/attention_avx512.cpp)  8 x 32: 16 zmm accumulators, and
//            masked loads/stores give any column remainder a register tile too
//   AVX2+FMA (avx2/*.cpp)                 6 x 16: 12 ymm accumulators
//   SSE2 (any x86-64)                     4 x 8
//   else plain loops.
// Rows that do not fill a tile get a tile of fewer rows (a template
// argument), so only the AVX2/SSE2 column remainder runs in plain loops.
// Everything is `static`: each translation unit keeps its own copy, so an
// AVX2/AVX-512 build of these functions is never shared with the portable code.
#pragma once

#include <cstddef>

#if defined(__AVX512F__)
#include <immintrin.h>
#define PS_BLOCK_GEMM_AVX512 1
#elif defined(__AVX2__) && (defined(__FMA__) || defined(_MSC_VER))
#include <immintrin.h>
#define PS_BLOCK_GEMM_AVX2 1
#elif defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define PS_BLOCK_GEMM_SSE2 1
#endif

// The row loops of a tile must unroll fully so the accumulators live in
// registers (R is a template argument; GCC wants to be told).
#if defined(__GNUC__) && !defined(__clang__)
#define PS_BLOCK_GEMM_UNROLL _Pragma("GCC unroll 8")
#else
#define PS_BLOCK_GEMM_UNROLL
#endif

namespace ps {

#if defined(PS_BLOCK_GEMM_AVX512)
constexpr int kBlockMR = 8;
constexpr int kBlockNR = 32;
#elif defined(PS_BLOCK_GEMM_AVX2)
constexpr int kBlockMR = 6;
constexpr int kBlockNR = 16;
#else
constexpr int kBlockMR = 4;
constexpr int kBlockNR = 8;
#endif

// How A is laid out: element (r, k) at a[r * rs + k * ks].
struct BlockA {
  const float* a;
  std::ptrdiff_t rs, ks;
};

#if defined(PS_BLOCK_GEMM_AVX512)
// C[R, n] (+)= A[R, K] · B[K, n] for n <= 32 columns (masked beyond n).
// Full tiles (n = 32) load B unmasked: the masks would stay in k registers
// only if the compiler had enough of them.
template <int R, bool kAccumulate>
static inline void block_gemm_tile(int K, BlockA A, const float* B, std::ptrdiff_t ldb, float* C,
                                   std::ptrdiff_t ldc, int n) {
  const bool full = n == 32;
  const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
  const __mmask16 m1 = static_cast<__mmask16>(n >= 32 ? 0xffff : n <= 16 ? 0 : (1u << (n - 16)) - 1);
  __m512 c0[R], c1[R];
PS_BLOCK_GEMM_UNROLL
  for (int r = 0; r < R; ++r) {
    c0[r] = kAccumulate ? _mm512_maskz_loadu_ps(m0, C + r * ldc) : _mm512_setzero_ps();
    c1[r] = kAccumulate ? _mm512_maskz_loadu_ps(m1, C + r * ldc + 16) : _mm512_setzero_ps();
  }
  const float* a = A.a;
  for (int k = 0; k < K; ++k, a += A.ks) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    const __m512 b0 = full ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(m0, b);
    const __m512 b1 = full ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
PS_BLOCK_GEMM_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * A.rs]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
PS_BLOCK_GEMM_UNROLL
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1[r]);
  }
}
#elif defined(PS_BLOCK_GEMM_AVX2)
// C[R, 16] (+)= A[R, K] · B[K, 16]
template <int R, bool kAccumulate>
static inline void block_gemm_tile(int K, BlockA A, const float* B, std::ptrdiff_t ldb, float* C,
                                   std::ptrdiff_t ldc, int /*n = 16*/) {
  __m256 c0[R], c1[R];
PS_BLOCK_GEMM_UNROLL
  for (int r = 0; r < R; ++r) {
    c0[r] = kAccumulate ? _mm256_loadu_ps(C + r * ldc) : _mm256_setzero_ps();
    c1[r] = kAccumulate ? _mm256_loadu_ps(C + r * ldc + 8) : _mm256_setzero_ps();
  }
  const float* a = A.a;
  for (int k = 0; k < K; ++k, a += A.ks) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
PS_BLOCK_GEMM_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * A.rs);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
PS_BLOCK_GEMM_UNROLL
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(C + r * ldc, c0[r]);
    _mm256_storeu_ps(C + r * ldc + 8, c1[r]);
  }
}
#elif defined(PS_BLOCK_GEMM_SSE2)
// C[R, 8] (+)= A[R, K] · B[K, 8]
template <int R, bool kAccumulate>
static inline void block_gemm_tile(int K, BlockA A, const float* B, std::ptrdiff_t ldb, float* C,
                                   std::ptrdiff_t ldc, int /*n = 8*/) {
  __m128 c0[R], c1[R];
  for (int r = 0; r < R; ++r) {
    c0[r] = kAccumulate ? _mm_loadu_ps(C + r * ldc) : _mm_setzero_ps();
    c1[r] = kAccumulate ? _mm_loadu_ps(C + r * ldc + 4) : _mm_setzero_ps();
  }
  const float* a = A.a;
  for (int k = 0; k < K; ++k, a += A.ks) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    const __m128 b0 = _mm_loadu_ps(b), b1 = _mm_loadu_ps(b + 4);
    for (int r = 0; r < R; ++r) {
      const __m128 av = _mm_set1_ps(a[r * A.rs]);
      c0[r] = _mm_add_ps(c0[r], _mm_mul_ps(av, b0));
      c1[r] = _mm_add_ps(c1[r], _mm_mul_ps(av, b1));
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm_storeu_ps(C + r * ldc, c0[r]);
    _mm_storeu_ps(C + r * ldc + 4, c1[r]);
  }
}
#else
// C[R, kBlockNR] (+)= A[R, K] · B[K, kBlockNR]
template <int R, bool kAccumulate>
static inline void block_gemm_tile(int K, BlockA A, const float* B, std::ptrdiff_t ldb, float* C,
                                   std::ptrdiff_t ldc, int /*n = kBlockNR*/) {
  float acc[R][kBlockNR];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kBlockNR; ++c) acc[r][c] = kAccumulate ? C[r * ldc + c] : 0.0f;
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    for (int r = 0; r < R; ++r) {
      const float av = A.a[r * A.rs + k * A.ks];
      for (int c = 0; c < kBlockNR; ++c) acc[r][c] += av * b[c];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < kBlockNR; ++c) C[r * ldc + c] = acc[r][c];
}
#endif

// Rows [0, M) x columns [n0, N) by plain loops (the column remainder the
// AVX2/SSE2/plain tiles miss).
template <bool kAccumulate>
static inline void block_gemm_edge(int M, int n0, int N, int K, BlockA A, const float* B,
                                   std::ptrdiff_t ldb, float* C, std::ptrdiff_t ldc) {
  for (int i = 0; i < M; ++i) {
    float* c = C + static_cast<std::ptrdiff_t>(i) * ldc;
    if (!kAccumulate)
      for (int j = n0; j < N; ++j) c[j] = 0.0f;
    for (int k = 0; k < K; ++k) {
      const float av = A.a[i * A.rs + k * A.ks];
      const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
      for (int j = n0; j < N; ++j) c[j] += av * b[j];
    }
  }
}

// Column strip [j, j + n) (n <= kBlockNR) of C for all M rows: tiles of
// kBlockMR rows, then one tile of the remaining rows. The strip's slice of
// B stays in L1 while the row tiles pass over it.
template <bool kAccumulate>
static inline void block_gemm_strip(int M, int n, int K, BlockA A, const float* B, std::ptrdiff_t ldb,
                                    float* C, std::ptrdiff_t ldc) {
  int i = 0;
  for (; i + kBlockMR <= M; i += kBlockMR)
    block_gemm_tile<kBlockMR, kAccumulate>(K, {A.a + i * A.rs, A.rs, A.ks}, B, ldb, C + i * ldc, ldc, n);
  const BlockA At = {A.a + i * A.rs, A.rs, A.ks};
  float* Ct = C + i * ldc;
  switch (M - i) {  // the remaining rows, fewer than kBlockMR
    case 1: block_gemm_tile<1, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
    case 2: block_gemm_tile<2, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
    case 3: block_gemm_tile<3, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
#if defined(PS_BLOCK_GEMM_AVX512) || defined(PS_BLOCK_GEMM_AVX2)
    case 4: block_gemm_tile<4, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
    case 5: block_gemm_tile<5, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
#endif
#if defined(PS_BLOCK_GEMM_AVX512)
    case 6: block_gemm_tile<6, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
    case 7: block_gemm_tile<7, kAccumulate>(K, At, B, ldb, Ct, ldc, n); break;
#endif
    default: break;
  }
}

// C[M,N] (+)= A · B for any M, N, K; A element (r, k) at A.a[r*A.rs + k*A.ks].
template <bool kAccumulate>
static inline void block_gemm(int M, int N, int K, BlockA A, const float* B, std::ptrdiff_t ldb,
                              float* C, std::ptrdiff_t ldc) {
#if defined(PS_BLOCK_GEMM_AVX512)  // masked tiles take the column remainder too
  for (int j = 0; j < N; j += kBlockNR)
    block_gemm_strip<kAccumulate>(M, N - j < kBlockNR ? N - j : kBlockNR, K, A, B + j, ldb, C + j, ldc);
#else
  const int n_full = N - N % kBlockNR;
  for (int j = 0; j < n_full; j += kBlockNR)
    block_gemm_strip<kAccumulate>(M, kBlockNR, K, A, B + j, ldb, C + j, ldc);
  if (n_full < N) block_gemm_edge<kAccumulate>(M, n_full, N, K, A, B, ldb, C, ldc);
#endif
}

// A read plain: row-major [M, K] with row stride lda.
static inline BlockA block_a(const float* a, std::ptrdiff_t lda) { return {a, lda, 1}; }
// A read transposed: A = X^T for X row-major [K, M] with row stride ldx.
static inline BlockA block_a_transposed(const float* x, std::ptrdiff_t ldx) { return {x, 1, ldx}; }

}  // namespace ps
