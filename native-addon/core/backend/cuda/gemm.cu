// fp32 GEMM on the CUDA backend: the three products of training (nt, nn, tn)
// through one tiled shared-memory kernel. Correctness first: a 64x64 output
// tile per block, k-steps of 16, 4x4 outputs per thread, fp32 accumulation in
// a fixed k order (deterministic). cuBLASLt / tensor-core kernels replace it
// for speed later; this one stays as the reference the parity test trusts.
//
// op(A)[i, p] = A[i * a_rs + p * a_cs], op(B)[p, j] = B[p * b_rs + j * b_cs]:
//   nt: A[M,K] rows, B[N,K] rows (op(B) = B^T)
//   nn: A[M,K], B[K,N]
//   tn: A[K,M] (op(A) = A^T), B[K,N]
// Tiles are loaded along whichever index is contiguous, so every load is
// coalesced in each layout.
#include <algorithm>
#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "gemm_common.h"
#include "weight_gemv.h"

namespace ps {

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kGemmThreads = 256;

__global__ void __launch_bounds__(kGemmThreads)
    gemm_kernel(int M, int N, int K, float alpha, const float* __restrict__ A, long long a_rs, long long a_cs,
                const float* __restrict__ B, long long b_rs, long long b_cs, bool accumulate, float* C,
                long long ldc) {
  __shared__ float As[kBK][kBM + 1];  // As[p][i]
  __shared__ float Bs[kBK][kBN + 1];  // Bs[p][j]
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int i0 = blockIdx.x * kBM, j0 = blockIdx.y * kBN;  // rows on x: up to 2^31 - 1 tiles
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += kBK) {
    for (int e = t; e < kBM * kBK; e += kGemmThreads) {
      int i, p;
      if (a_cs == 1) { p = e % kBK; i = e / kBK; } else { i = e % kBM; p = e / kBM; }
      const int gi = i0 + i, gp = k0 + p;
      As[p][i] = gi < M && gp < K ? A[gi * a_rs + gp * a_cs] : 0.0f;
    }
    for (int e = t; e < kBN * kBK; e += kGemmThreads) {
      int j, p;
      if (b_cs == 1) { j = e % kBN; p = e / kBN; } else { p = e % kBK; j = e / kBK; }
      const int gj = j0 + j, gp = k0 + p;
      Bs[p][j] = gj < N && gp < K ? B[gp * b_rs + gj * b_cs] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kBK; ++p) {
      float a[4], b[4];
#pragma unroll
      for (int x = 0; x < 4; ++x) a[x] = As[p][ty + 16 * x];
#pragma unroll
      for (int y = 0; y < 4; ++y) b[y] = Bs[p][tx + 16 * y];
#pragma unroll
      for (int x = 0; x < 4; ++x)
#pragma unroll
        for (int y = 0; y < 4; ++y) acc[x][y] += a[x] * b[y];
    }
    __syncthreads();
  }
#pragma unroll
  for (int x = 0; x < 4; ++x) {
    const int i = i0 + ty + 16 * x;
    if (i >= M) continue;
#pragma unroll
    for (int y = 0; y < 4; ++y) {
      const int j = j0 + tx + 16 * y;
      if (j >= N) continue;
      float* c = C + i * ldc + j;
      *c = accumulate ? *c + alpha * acc[x][y] : alpha * acc[x][y];
    }
  }
}

__global__ void zero_matrix_kernel(int M, int N, float* C, long long ldc) {
  const size_t n = static_cast<size_t>(M) * N;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n; e += size_t(gridDim.x) * blockDim.x)
    C[(e / N) * ldc + e % N] = 0.0f;
}

}  // namespace

namespace cuda {

void check_gemm_args(const char* op, int M, int N, int K, int lda, int lda_min, int ldb, int ldb_min, int ldc,
                     float beta) {
  auto fail = [&](const std::string& what) {
    throw Error(std::string(op) + ": " + what + " (M=" + std::to_string(M) + ", N=" + std::to_string(N) +
                ", K=" + std::to_string(K) + ")");
  };
  if (M < 0 || N < 0 || K < 0) fail("negative dimension");
  if (beta != 0.0f && beta != 1.0f) fail("beta must be 0 or 1, got " + std::to_string(beta));
  if (M > 0 && N > 0 && K > 0) {
    if (lda < std::max(1, lda_min)) fail("lda " + std::to_string(lda) + " is below " + std::to_string(lda_min));
    if (ldb < std::max(1, ldb_min)) fail("ldb " + std::to_string(ldb) + " is below " + std::to_string(ldb_min));
  }
  if (M > 0 && N > 0 && ldc < std::max(1, N)) fail("ldc " + std::to_string(ldc) + " is below N");
}

void zero_matrix(const char* op, int M, int N, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  PS_LAUNCH(zero_matrix_kernel, blocks_for(static_cast<size_t>(M) * N), kThreads, 0, 0)(M, N, C, ldc);
  check_launch(op);
}

}  // namespace cuda

namespace {

void run(const char* op, int M, int N, int K, float alpha, const float* A, long long a_rs, long long a_cs,
         const float* B, long long b_rs, long long b_cs, float beta, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    if (beta == 0.0f) cuda::zero_matrix(op, M, N, C, ldc);
    return;
  }
  if ((N + kBN - 1) / kBN > 65535)
    throw Error(std::string(op) + ": N=" + std::to_string(N) + " exceeds this kernel's grid (4,194,240 columns)");
  const dim3 grid((M + kBM - 1) / kBM, (N + kBN - 1) / kBN);
  PS_LAUNCH(gemm_kernel, grid, kGemmThreads, 0, 0)
      (M, N, K, alpha, A, a_rs, a_cs, B, b_rs, b_cs, beta != 0.0f, C, ldc);
  cuda::check_launch(op);
}

}  // namespace

void CudaBackend::gemm_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                          float beta, float* C, int ldc) {
  cuda::check_gemm_args("gemm_nt", M, N, K, lda, K, ldb, K, ldc, beta);
  // Decode (a few rows): the fused GEMV reads B once (weight_gemv.cu). In fp32
  // with cuBLASLt, cuBLASLt's own GEMV reads B directly too, so it keeps those;
  // under bf16 the GEMV avoids the rounded copy of the whole of B.
  if (gemv_enabled_ && cuda::gemv_applies(M, N, K, alpha) &&
      (precision_ == GemmPrecision::Bf16 || !gemm_uses_cublaslt()))
    return cuda::gemv_f32_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, precision_ == GemmPrecision::Bf16);
  if (precision_ == GemmPrecision::Bf16)
    return gemm_bf16("gemm_nt", false, true, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (gemm_via_cublaslt("gemm_nt", false, true, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  run("gemm_nt", M, N, K, alpha, A, lda, 1, B, 1, ldb, beta, C, ldc);
}

void CudaBackend::gemm_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                          float beta, float* C, int ldc) {
  cuda::check_gemm_args("gemm_nn", M, N, K, lda, K, ldb, N, ldc, beta);
  if (precision_ == GemmPrecision::Bf16)
    return gemm_bf16("gemm_nn", false, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (gemm_via_cublaslt("gemm_nn", false, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  run("gemm_nn", M, N, K, alpha, A, lda, 1, B, ldb, 1, beta, C, ldc);
}

void CudaBackend::gemm_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
                          float beta, float* C, int ldc) {
  cuda::check_gemm_args("gemm_tn", M, N, K, lda, M, ldb, N, ldc, beta);
  if (precision_ == GemmPrecision::Bf16)
    return gemm_bf16("gemm_tn", true, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (gemm_via_cublaslt("gemm_tn", true, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  run("gemm_tn", M, N, K, alpha, A, 1, lda, B, ldb, 1, beta, C, ldc);
}

}  // namespace ps
