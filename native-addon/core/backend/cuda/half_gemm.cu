// 16-bit frozen base weights on the CUDA backend (backend.h half_gemm_nt /
// half_gemm_nn): the weight stays 16-bit in device memory (2 bytes a value,
// uploaded as the checkpoint stores it).
//
// nt with a few rows (generation): the fused GEMV of weight_gemv.cu reads the
// 16-bit values directly. Otherwise:
// - fp32 precision: each call widens W exactly (half_to_float, the conversion
//   of model/half.h) a chunk of rows at a time and runs this backend's GEMM
//   on each chunk (weight_gemm.cu);
// - bf16 precision: a BF16 weight already is the bf16 operand, so the bf16
//   GEMM reads it where it lies (no copy at all); an F16 weight is converted
//   a chunk at a time straight into a bf16 scratch (exact fp32 value rounded
//   to nearest even: the bits the widen-then-round path gives).
#include "../../model/half.h"
#include "../../quant/bf16_round.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "weight_gemv.h"

namespace ps {

namespace {

// dst[r * ld + c] = bf16(IEEE half src[r * cols + c]), rows x cols.
__global__ void f16_to_bf16_rows_kernel(const uint16_t* src, int rows, int cols, uint16_t* dst, long long ld) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;  // cuda::row_col_grid
  if (c >= cols) return;
  for (int r = blockIdx.y; r < rows; r += gridDim.y)
    dst[r * ld + c] = bf16_bits_from_f32_bits(f16_to_f32_bits(src[static_cast<size_t>(r) * cols + c]));
}

// W's rows [row0, row0 + rows) widened exactly into w.
auto widen_rows(CudaBackend& be, const HalfWeight& W) {
  return [&be, &W](int row0, int rows, float* w) {
    be.half_to_float(W.data + static_cast<size_t>(row0) * W.cols, W.bf16, w, static_cast<size_t>(rows) * W.cols);
  };
}

// An F16 weight's rows [row0, row0 + rows) as bf16 into w (row stride ld).
auto f16_rows_to_bf16(const HalfWeight& W) {
  return [&W](int row0, int rows, uint16_t* w, int ld) {
    PS_LAUNCH(f16_to_bf16_rows_kernel, cuda::row_col_grid(rows, W.cols), cuda::kThreads, 0, 0)
    (W.data + static_cast<size_t>(row0) * W.cols, rows, W.cols, w, ld);
    cuda::check_launch("half_gemm (F16 to bf16)");
  };
}

}  // namespace

void CudaBackend::half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y,
                               int ldy) {
  half_check_gemm_args("half_gemm_nt", M, W, ldx, W.cols, ldy, W.rows, beta);
  const bool bf16 = precision_ == GemmPrecision::Bf16;
  if (gemv_enabled_ && cuda::gemv_applies(M, W.rows, W.cols, alpha))
    return cuda::gemv_half_nt(M, X, ldx, W, alpha, beta, Y, ldy, bf16);
  if (bf16 && bf16_direct_)
    return weight_gemm_bf16(true, M, X, ldx, W.rows, W.cols, alpha, beta, Y, ldy, W.bf16 ? W.data : nullptr,
                            f16_rows_to_bf16(W));
  weight_gemm(true, M, X, ldx, W.rows, W.cols, alpha, beta, Y, ldy, widen_rows(*this, W));
}

// The transposed product is training's (input gradients): no GEMV.
void CudaBackend::half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                               float* dX, int lddx) {
  half_check_gemm_args("half_gemm_nn", M, W, lddy, W.rows, lddx, W.cols, beta);
  if (precision_ == GemmPrecision::Bf16 && bf16_direct_)
    return weight_gemm_bf16(false, M, dY, lddy, W.rows, W.cols, alpha, beta, dX, lddx, W.bf16 ? W.data : nullptr,
                            f16_rows_to_bf16(W));
  weight_gemm(false, M, dY, lddy, W.rows, W.cols, alpha, beta, dX, lddx, widen_rows(*this, W));
}

}  // namespace ps
