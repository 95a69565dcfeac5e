// Products of small blocks that already sit in cache (the attention kernels'
// Q·K^T, P·V, ... on 32x64 tiles): C[M,N] (+)= A[M,K] · B[K,N], all row-major
// with row strides. Register tiles of kBlockMR x kBlockNR accumulators, written
// with intrinsics: left to itself the compiler vectorised the plain-loop tile
// along k with shuffles once it was inlined (5x slower).
//
// The tile follows the instruction set the including file is compiled for:
// AVX2+FMA (avx2/*.cpp) 4 x 16, SSE2 (any x86-64) 4 x 8, else plain loops.
// Everything is `static`: each translation unit keeps its own copy, so an
// AVX2 build of these functions is never shared with the portable code.
#pragma once

#include <cstddef>

#if defined(__AVX2__) && (defined(__FMA__) || defined(_MSC_VER))
#include <immintrin.h>
#define PS_BLOCK_GEMM_AVX2 1
#elif defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define PS_BLOCK_GEMM_SSE2 1
#endif

namespace ps {

constexpr int kBlockMR = 4;
#if defined(PS_BLOCK_GEMM_AVX2)
constexpr int kBlockNR = 16;
#else
constexpr int kBlockNR = 8;
#endif

// C[4, kBlockNR] (+)= A[4, K] · B[K, kBlockNR]
template <bool kAccumulate>
static inline void block_gemm_tile(int K, const float* A, int lda, const float* B, int ldb,
                                   float* C, int ldc) {
#if defined(PS_BLOCK_GEMM_AVX2)
  __m256 c[4][2];
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 2; ++v)
      c[r][v] = kAccumulate ? _mm256_loadu_ps(C + r * ldc + 8 * v) : _mm256_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int r = 0; r < 4; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * lda + k);
      c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 2; ++v) _mm256_storeu_ps(C + r * ldc + 8 * v, c[r][v]);
#elif defined(PS_BLOCK_GEMM_SSE2)
  __m128 c[4][2];
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 2; ++v)
      c[r][v] = kAccumulate ? _mm_loadu_ps(C + r * ldc + 4 * v) : _mm_setzero_ps();
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    const __m128 b0 = _mm_loadu_ps(b), b1 = _mm_loadu_ps(b + 4);
    for (int r = 0; r < 4; ++r) {
      const __m128 a = _mm_set1_ps(A[r * lda + k]);
      c[r][0] = _mm_add_ps(c[r][0], _mm_mul_ps(a, b0));
      c[r][1] = _mm_add_ps(c[r][1], _mm_mul_ps(a, b1));
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 2; ++v) _mm_storeu_ps(C + r * ldc + 4 * v, c[r][v]);
#else
  float acc[kBlockMR][kBlockNR];
  for (int r = 0; r < kBlockMR; ++r)
    for (int c = 0; c < kBlockNR; ++c) acc[r][c] = kAccumulate ? C[r * ldc + c] : 0.0f;
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    for (int r = 0; r < kBlockMR; ++r) {
      const float a = A[r * lda + k];
      for (int c = 0; c < kBlockNR; ++c) acc[r][c] += a * b[c];
    }
  }
  for (int r = 0; r < kBlockMR; ++r)
    for (int c = 0; c < kBlockNR; ++c) C[r * ldc + c] = acc[r][c];
#endif
}

// Rows [0, M) x columns [n0, N) by plain loops (the edges the tiles miss).
template <bool kAccumulate>
static inline void block_gemm_edge(int M, int n0, int N, int K, const float* A, int lda,
                                   const float* B, int ldb, float* C, int ldc) {
  for (int i = 0; i < M; ++i) {
    const float* a = A + static_cast<std::ptrdiff_t>(i) * lda;
    float* c = C + static_cast<std::ptrdiff_t>(i) * ldc;
    if (!kAccumulate)
      for (int j = n0; j < N; ++j) c[j] = 0.0f;
    for (int k = 0; k < K; ++k) {
      const float av = a[k];
      const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
      for (int j = n0; j < N; ++j) c[j] += av * b[j];
    }
  }
}

// Any M, N, K.
template <bool kAccumulate>
static inline void block_gemm(int M, int N, int K, const float* A, int lda, const float* B,
                              int ldb, float* C, int ldc) {
  const int m_full = M - M % kBlockMR, n_full = N - N % kBlockNR;
  for (int i = 0; i < m_full; i += kBlockMR) {
    const float* a = A + static_cast<std::ptrdiff_t>(i) * lda;
    float* c = C + static_cast<std::ptrdiff_t>(i) * ldc;
    for (int j = 0; j < n_full; j += kBlockNR)
      block_gemm_tile<kAccumulate>(K, a, lda, B + j, ldb, c + j, ldc);
    if (n_full < N) block_gemm_edge<kAccumulate>(kBlockMR, n_full, N, K, a, lda, B, ldb, c, ldc);
  }
  if (m_full < M)
    block_gemm_edge<kAccumulate>(M - m_full, 0, N, K, A + static_cast<std::ptrdiff_t>(m_full) * lda,
                                 lda, B, ldb, C + static_cast<std::ptrdiff_t>(m_full) * ldc, ldc);
}

}  // namespace ps
