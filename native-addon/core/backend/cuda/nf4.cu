// NF4 (QLoRA) on the CUDA backend, with bitsandbytes' semantics exactly as
// core/quant and the CPU backend (backend/cpu/nf4_dequant_impl.h) compute them:
// element i of the flattened [rows, cols] weight is code c (high nibble of
// byte i/2 for even i, low nibble for odd i) times its block's absmax
// (nf4_device.cuh spells the arithmetic once, with _rn intrinsics). The
// dequantized values equal the CPU's bit for bit.
//
// nf4_gemm_nt with a few rows (generation): the fused GEMV of weight_gemv.cu
// reads the 4-bit codes directly. Otherwise the weight is dequantized a chunk
// of rows at a time into a reused scratch buffer and multiplied by the
// backend's GEMM (weight_gemm.cu): fp32 chunks in fp32 precision, bf16 chunks
// (the exact value rounded to nearest even: half the scratch of fp32) under
// bf16 precision.
#include <string>

#include "../../quant/bf16_round.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "nf4_device.cuh"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#include "weight_gemv.h"

namespace ps {

namespace {

__constant__ float kNf4Table[16];

// w[j] = the dequantized value of element first + j of W, j < n.
__global__ void nf4_dequantize_kernel(cuda::Nf4Args W, size_t first, size_t n, float* w) {
  for (size_t j = blockIdx.x * size_t(blockDim.x) + threadIdx.x; j < n; j += size_t(gridDim.x) * blockDim.x) {
    const long long i = static_cast<long long>(first + j);
    w[j] = cuda::nf4_value(kNf4Table, cuda::nf4_code(W, i), cuda::nf4_block_scale(W, i >> W.block_shift));
  }
}

// The same values rounded to bf16 (nearest even): w[r * ld + c] for the
// rows x cols elements starting at element `first` (whole rows of W).
__global__ void nf4_dequantize_bf16_kernel(cuda::Nf4Args W, size_t first, int rows, int cols, uint16_t* w,
                                           long long ld) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;  // cuda::row_col_grid
  if (c >= cols) return;
  for (int r = blockIdx.y; r < rows; r += gridDim.y) {
    const long long i = static_cast<long long>(first) + static_cast<long long>(r) * cols + c;
    const float v = cuda::nf4_value(kNf4Table, cuda::nf4_code(W, i), cuda::nf4_block_scale(W, i >> W.block_shift));
    w[r * ld + c] = bf16_bits_from_f32_bits(__float_as_uint(v));
  }
}

// Rows [row0, row0 + rows) of W dequantized into w.
void dequantize_rows(const Nf4Weight& W, int64_t row0, int64_t rows, float* w) {
  const size_t n = static_cast<size_t>(rows * W.cols);
  PS_LAUNCH(nf4_dequantize_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)
  (cuda::nf4_args_of(W), static_cast<size_t>(row0 * W.cols), n, w);
  cuda::check_launch("nf4_dequantize");
}

// Rows [row0, row0 + rows) of W dequantized and rounded to bf16 into w (row stride ld).
void dequantize_rows_bf16(const Nf4Weight& W, int64_t row0, int rows, uint16_t* w, int ld) {
  PS_LAUNCH(nf4_dequantize_bf16_kernel, cuda::row_col_grid(rows, static_cast<int>(W.cols)), cuda::kThreads, 0, 0)
  (cuda::nf4_args_of(W), static_cast<size_t>(row0 * W.cols), rows, static_cast<int>(W.cols), w, ld);
  cuda::check_launch("nf4_dequantize (bf16)");
}

}  // namespace

namespace cuda {
void nf4_upload_code_table() {
  check(cudaMemcpyToSymbol(kNf4Table, nf4_code_table(), 16 * sizeof(float)), "uploading the NF4 code table");
}
}  // namespace cuda

void CudaBackend::nf4_dequantize(const Nf4Weight& W, float* w) {
  nf4_check_weight(W, "nf4_dequantize");
  dequantize_rows(W, 0, W.rows, w);
}

void CudaBackend::nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta, float* Y,
                              int ldy) {
  nf4_check_gemm_args("nf4_gemm_nt", M, W, ldx, static_cast<int>(W.cols), ldy, static_cast<int>(W.rows), beta);
  const int N = static_cast<int>(W.rows), K = static_cast<int>(W.cols);
  const bool bf16 = precision_ == GemmPrecision::Bf16;
  if (gemv_enabled_ && cuda::gemv_applies(M, N, K, alpha))
    return cuda::gemv_nf4_nt(M, X, ldx, W, alpha, beta, Y, ldy, bf16);
  if (bf16 && bf16_direct_)
    return weight_gemm_bf16(true, M, X, ldx, N, K, alpha, beta, Y, ldy, nullptr,
                            [&](int row0, int rows, uint16_t* w, int ld) { dequantize_rows_bf16(W, row0, rows, w, ld); });
  weight_gemm(true, M, X, ldx, N, K, alpha, beta, Y, ldy,
              [&](int row0, int rows, float* w) { dequantize_rows(W, row0, rows, w); });
}

// The transposed product is training's (input gradients): always chunked.
void CudaBackend::nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha, float beta,
                              float* dX, int lddx) {
  nf4_check_gemm_args("nf4_gemm_nn", M, W, lddy, static_cast<int>(W.rows), lddx, static_cast<int>(W.cols), beta);
  const int N = static_cast<int>(W.rows), K = static_cast<int>(W.cols);
  if (precision_ == GemmPrecision::Bf16 && bf16_direct_)
    return weight_gemm_bf16(false, M, dY, lddy, N, K, alpha, beta, dX, lddx, nullptr,
                            [&](int row0, int rows, uint16_t* w, int ld) { dequantize_rows_bf16(W, row0, rows, w, ld); });
  weight_gemm(false, M, dY, lddy, N, K, alpha, beta, dX, lddx,
              [&](int row0, int rows, float* w) { dequantize_rows(W, row0, rows, w); });
}

}  // namespace ps
