// 16-bit frozen base weights on the CUDA backend (backend.h half_gemm_nt /
// half_gemm_nn): the weight stays 16-bit in device memory (2 bytes a value,
// uploaded as the checkpoint stores it); each call widens it exactly, a chunk
// of rows at a time, into a reused fp32 scratch buffer (half_to_float, the
// conversion of model/half.h) and runs this backend's own fp32 GEMM on each
// chunk. The scratch is the slot the NF4 GEMMs dequantize into, and a chunk
// holds at most weight_chunk_values() values (16 MiB fp32 by default): a
// 128256 x 2048 lm_head would be 1 GiB widened whole.
//
// Chunking over W's rows (the N of the forward product):
//   nt: Y[:, n0:n1] = alpha X W[n0:n1]^T + beta Y[:, n0:n1]. Each output
//       column is its own dot product, so every value is the one the fp32
//       GEMM on the whole widened weight would compute for that column.
//   nn: dX = alpha dY[:, n0:n1] W[n0:n1] + beta' dX, beta' = beta for the
//       first chunk and 1 after it: the sum over N runs chunk by chunk.
//
// Correctness first, like nf4.cu: a tiled kernel widening tiles in shared
// memory, and a GEMV reading 2 bytes a value for generation, come with the
// speed work (README "Not done yet").
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

float* CudaBackend::widened_half_rows(const HalfWeight& W, int row0, int rows) {
  const size_t n = static_cast<size_t>(rows) * W.cols;
  float* w = static_cast<float*>(scratch(Scratch::Nf4Weight, n * sizeof(float)));
  half_to_float(W.data + static_cast<size_t>(row0) * W.cols, W.bf16, w, n);
  return w;
}

void CudaBackend::half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y,
                               int ldy) {
  half_check_gemm_args("half_gemm_nt", M, W, ldx, W.cols, ldy, W.rows, beta);
  if (M == 0 || W.rows == 0) return;
  if (alpha == 0.0f || W.cols == 0) {  // no product: gemm_nt only scales Y
    gemm_nt(M, W.rows, W.cols, alpha, X, ldx, nullptr, W.cols > 0 ? W.cols : 1, beta, Y, ldy);
    return;
  }
  const int chunk = weight_chunk_rows(W.rows, W.cols);
  for (int n0 = 0; n0 < W.rows; n0 += chunk) {
    const int n = W.rows - n0 < chunk ? W.rows - n0 : chunk;
    gemm_nt(M, n, W.cols, alpha, X, ldx, widened_half_rows(W, n0, n), W.cols, beta, Y + n0, ldy);
  }
}

void CudaBackend::half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                               float* dX, int lddx) {
  half_check_gemm_args("half_gemm_nn", M, W, lddy, W.rows, lddx, W.cols, beta);
  if (M == 0 || W.cols == 0) return;
  if (alpha == 0.0f || W.rows == 0) {  // no product: gemm_nn only scales dX
    gemm_nn(M, W.cols, W.rows, alpha, dY, lddy, nullptr, W.cols, beta, dX, lddx);
    return;
  }
  const int chunk = weight_chunk_rows(W.rows, W.cols);
  for (int n0 = 0; n0 < W.rows; n0 += chunk) {
    const int n = W.rows - n0 < chunk ? W.rows - n0 : chunk;
    gemm_nn(M, W.cols, n, alpha, dY + n0, lddy, widened_half_rows(W, n0, n), W.cols, n0 == 0 ? beta : 1.0f, dX,
            lddx);
  }
}

}  // namespace ps
