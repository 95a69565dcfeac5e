// NF4 (QLoRA) on the CUDA backend, with bitsandbytes' semantics exactly as
// core/quant and the CPU backend (backend/cpu/nf4_dequant_impl.h) compute them:
// element i of the flattened [rows, cols] weight is code c (high nibble of
// byte i/2 for even i, low nibble for odd i) times its block's absmax; with
// double quantization absmax = map[absmax_code] * nested_absmax[b / nested_blocksize],
// rounded, THEN + nested_offset, rounded (spelled with _rn intrinsics so no
// fused multiply-add changes the bits). The dequantized values equal the
// CPU's bit for bit.
//
// nf4_gemm_nt / nf4_gemm_nn: correctness first, the weight is dequantized a
// chunk of rows at a time (at most 16 MiB of fp32) into a reused scratch
// buffer and multiplied by the backend's GEMM. The fused 4-bit GEMV for
// generation and dequantizing tiles in shared memory come later.
#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"

namespace ps {

namespace {

__constant__ float kNf4Table[16];

struct Nf4Args {
  const uint8_t* codes;
  const float* absmax;
  const uint8_t* absmax_codes;
  const float* absmax_map;
  const float* nested_absmax;
  long long blocksize, nested_blocksize;
  float nested_offset;
  bool double_quant;
};

// w[j] = the dequantized value of element first + j of W, j < n.
__global__ void nf4_dequantize_kernel(Nf4Args W, size_t first, size_t n, float* w) {
  for (size_t j = blockIdx.x * size_t(blockDim.x) + threadIdx.x; j < n; j += size_t(gridDim.x) * blockDim.x) {
    const size_t i = first + j;
    const uint8_t byte = W.codes[i >> 1];
    const int c = (i & 1) ? (byte & 0x0F) : (byte >> 4);
    const size_t b = i / static_cast<size_t>(W.blocksize);
    float s;
    if (W.double_quant) {
      const float scaled = __fmul_rn(W.absmax_map[W.absmax_codes[b]], W.nested_absmax[b / W.nested_blocksize]);
      s = __fadd_rn(scaled, W.nested_offset);
    } else {
      s = W.absmax[b];
    }
    w[j] = __fmul_rn(kNf4Table[c], s);
  }
}

Nf4Args args_of(const Nf4Weight& W) {
  Nf4Args a;
  a.codes = W.codes;
  a.absmax = W.absmax;
  a.absmax_codes = W.absmax_codes;
  a.absmax_map = W.absmax_map;
  a.nested_absmax = W.nested_absmax;
  a.blocksize = W.blocksize;
  a.nested_blocksize = W.nested_blocksize;
  a.nested_offset = W.nested_offset;
  a.double_quant = W.double_quantized();
  return a;
}

// Rows [row0, row0 + rows) of W dequantized into w.
void dequantize_rows(const Nf4Weight& W, int64_t row0, int64_t rows, float* w) {
  const size_t n = static_cast<size_t>(rows * W.cols);
  PS_LAUNCH(nf4_dequantize_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)
  (args_of(W), static_cast<size_t>(row0 * W.cols), n, w);
  cuda::check_launch("nf4_dequantize");
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

// A chunk of W's rows at a time (weight_gemm.cu).
void CudaBackend::nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta, float* Y,
                              int ldy) {
  nf4_check_gemm_args("nf4_gemm_nt", M, W, ldx, static_cast<int>(W.cols), ldy, static_cast<int>(W.rows), beta);
  weight_gemm(true, M, X, ldx, static_cast<int>(W.rows), static_cast<int>(W.cols), alpha, beta, Y, ldy,
              [&](int row0, int rows, float* w) { dequantize_rows(W, row0, rows, w); });
}

void CudaBackend::nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha, float beta,
                              float* dX, int lddx) {
  nf4_check_gemm_args("nf4_gemm_nn", M, W, lddy, static_cast<int>(W.rows), lddx, static_cast<int>(W.cols), beta);
  weight_gemm(false, M, dY, lddy, static_cast<int>(W.rows), static_cast<int>(W.cols), alpha, beta, dX, lddx,
              [&](int row0, int rows, float* w) { dequantize_rows(W, row0, rows, w); });
}

}  // namespace ps
