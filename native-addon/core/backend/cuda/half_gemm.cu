// 16-bit frozen base weights on the CUDA backend (backend.h half_gemm_nt /
// half_gemm_nn): the weight stays 16-bit in device memory (2 bytes a value,
// uploaded as the checkpoint stores it); each call widens it exactly
// (half_to_float, the conversion of model/half.h) a chunk of rows at a time
// and runs this backend's GEMM on each chunk (weight_gemm.cu).
//
// Correctness first, like nf4.cu: a tiled kernel widening tiles in shared
// memory, and a GEMV reading 2 bytes a value for generation, come with the
// speed work (README "Not done yet").
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {
// W's rows [row0, row0 + rows) widened exactly into w.
auto widen_rows(CudaBackend& be, const HalfWeight& W) {
  return [&be, &W](int row0, int rows, float* w) {
    be.half_to_float(W.data + static_cast<size_t>(row0) * W.cols, W.bf16, w, static_cast<size_t>(rows) * W.cols);
  };
}
}  // namespace

void CudaBackend::half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y,
                               int ldy) {
  half_check_gemm_args("half_gemm_nt", M, W, ldx, W.cols, ldy, W.rows, beta);
  weight_gemm(true, M, X, ldx, W.rows, W.cols, alpha, beta, Y, ldy, widen_rows(*this, W));
}

void CudaBackend::half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                               float* dX, int lddx) {
  half_check_gemm_args("half_gemm_nn", M, W, lddy, W.rows, lddx, W.cols, beta);
  weight_gemm(false, M, dY, lddy, W.rows, W.cols, alpha, beta, dX, lddx, widen_rows(*this, W));
}

}  // namespace ps
