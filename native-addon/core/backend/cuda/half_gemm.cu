// 16-bit frozen base weights on the CUDA backend (backend.h half_gemm_nt /
// half_gemm_nn): the weight stays 16-bit in device memory (2 bytes a value,
// uploaded as the checkpoint stores it); each call widens it exactly into a
// reused fp32 scratch buffer (half_to_float, the conversion of model/half.h)
// and runs this backend's own fp32 GEMM on it. So the results are the fp32
// GEMM's on the widened weight, bit for bit, whichever kernel that GEMM
// dispatches to. The scratch is the slot the NF4 GEMMs dequantize into (one
// base weight at a time): at most one layer's fp32 weight, never the model's.
//
// Correctness first, like nf4.cu: a tiled kernel widening tiles in shared
// memory, and a GEMV reading 2 bytes a value for generation, come with the
// speed work (README "Not done yet").
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

float* CudaBackend::widened_half(const HalfWeight& W) {
  const size_t n = static_cast<size_t>(W.numel());
  float* w = static_cast<float*>(scratch(Scratch::Nf4Weight, n * sizeof(float)));
  half_to_float(W.data, W.bf16, w, n);
  return w;
}

void CudaBackend::half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y,
                               int ldy) {
  half_check_gemm_args("half_gemm_nt", M, W, ldx, W.cols, ldy, W.rows, beta);
  if (M == 0 || W.rows == 0) return;
  const float* w = alpha != 0.0f && W.cols > 0 ? widened_half(W) : nullptr;  // else gemm_nt only scales Y
  gemm_nt(M, W.rows, W.cols, alpha, X, ldx, w, W.cols > 0 ? W.cols : 1, beta, Y, ldy);
}

void CudaBackend::half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                               float* dX, int lddx) {
  half_check_gemm_args("half_gemm_nn", M, W, lddy, W.rows, lddx, W.cols, beta);
  if (M == 0 || W.cols == 0) return;
  const float* w = alpha != 0.0f && W.rows > 0 ? widened_half(W) : nullptr;
  gemm_nn(M, W.cols, W.rows, alpha, dY, lddy, w, W.cols, beta, dX, lddx);
}

}  // namespace ps
