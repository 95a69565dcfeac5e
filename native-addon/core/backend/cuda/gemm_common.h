// What every GEMM of the CUDA backend shares (defined in gemm.cu): the
// argument rules of backend.h's GEMMs, and C = 0 for the products that
// multiply nothing (K == 0 or alpha == 0 with beta == 0). No CUDA types here.
#pragma once

namespace ps {
namespace cuda {

// Throws ps::Error "<op>: <what> (M=.., N=.., K=..)" for a negative
// dimension, beta other than 0 or 1, or a leading dimension below its minimum.
void check_gemm_args(const char* op, int M, int N, int K, int lda, int lda_min, int ldb, int ldb_min, int ldc,
                     float beta);
// C[M, N] (row stride ldc) = 0.
void zero_matrix(const char* op, int M, int N, float* C, int ldc);

}  // namespace cuda
}  // namespace ps
