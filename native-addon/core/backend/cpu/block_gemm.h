// Products of small blocks that already sit in cache (the attention kernels'
// Q·K^T, P·V, ... on 32x64 tiles): C[M,N] (+)= A[M,K] · B[K,N], all row-major
// with row strides. Register tiles of MR x NR accumulators that the compiler
// keeps in vector registers; MR/NR are chosen per ISA by the includer.
//
// `static` on purpose: this header is compiled into both the portable and the
// AVX2 translation units, and each must keep its own copy.
#pragma once

#include <cstddef>

namespace ps {

template <int MR, int NR, bool kAccumulate>
static inline void block_gemm_tile(int K, const float* A, int lda, const float* B, int ldb,
                                   float* C, int ldc) {
  float acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) acc[r][c] = kAccumulate ? C[r * ldc + c] : 0.0f;
  for (int k = 0; k < K; ++k) {
    const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * lda + k];
      for (int c = 0; c < NR; ++c) acc[r][c] += a * b[c];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) C[r * ldc + c] = acc[r][c];
}

// Any M, N, K (edges handled by plain loops).
template <int MR, int NR, bool kAccumulate>
static inline void block_gemm(int M, int N, int K, const float* A, int lda, const float* B,
                              int ldb, float* C, int ldc) {
  const int n_full = N - N % NR;
  int i = 0;
  for (; i + MR <= M; i += MR) {
    const float* a = A + static_cast<std::ptrdiff_t>(i) * lda;
    float* c = C + static_cast<std::ptrdiff_t>(i) * ldc;
    for (int j = 0; j < n_full; j += NR)
      block_gemm_tile<MR, NR, kAccumulate>(K, a, lda, B + j, ldb, c + j, ldc);
    if (n_full < N) {
      for (int r = 0; r < MR; ++r) {
        float* cr = c + static_cast<std::ptrdiff_t>(r) * ldc;
        if (!kAccumulate)
          for (int j = n_full; j < N; ++j) cr[j] = 0.0f;
        for (int k = 0; k < K; ++k) {
          const float av = a[static_cast<std::ptrdiff_t>(r) * lda + k];
          const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
          for (int j = n_full; j < N; ++j) cr[j] += av * b[j];
        }
      }
    }
  }
  for (; i < M; ++i) {
    const float* a = A + static_cast<std::ptrdiff_t>(i) * lda;
    float* c = C + static_cast<std::ptrdiff_t>(i) * ldc;
    if (!kAccumulate)
      for (int j = 0; j < N; ++j) c[j] = 0.0f;
    for (int k = 0; k < K; ++k) {
      const float av = a[k];
      const float* b = B + static_cast<std::ptrdiff_t>(k) * ldb;
      for (int j = 0; j < N; ++j) c[j] += av * b[j];
    }
  }
}

}  // namespace ps
