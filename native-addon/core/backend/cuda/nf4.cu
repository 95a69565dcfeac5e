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

// Like half_gemm.cu, a chunk of W's rows at a time (weight_chunk_rows):
//   nt: Y[:, n0:n1] = alpha X W[n0:n1]^T + beta Y[:, n0:n1]
//   nn: dX = alpha dY[:, n0:n1] W[n0:n1] + beta' dX (beta, then 1)
void CudaBackend::nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta, float* Y,
                              int ldy) {
  nf4_check_gemm_args("nf4_gemm_nt", M, W, ldx, static_cast<int>(W.cols), ldy, static_cast<int>(W.rows), beta);
  const int N = static_cast<int>(W.rows), K = static_cast<int>(W.cols);
  if (M == 0 || N == 0) return;
  if (alpha == 0.0f || K == 0) {  // no product: gemm_nt only scales Y
    gemm_nt(M, N, K, alpha, X, ldx, nullptr, K > 0 ? K : 1, beta, Y, ldy);
    return;
  }
  const int chunk = weight_chunk_rows(N, K);
  float* w = static_cast<float*>(scratch(Scratch::Nf4Weight, static_cast<size_t>(chunk) * K * sizeof(float)));
  for (int n0 = 0; n0 < N; n0 += chunk) {
    const int n = N - n0 < chunk ? N - n0 : chunk;
    dequantize_rows(W, n0, n, w);
    gemm_nt(M, n, K, alpha, X, ldx, w, K, beta, Y + n0, ldy);
  }
}

void CudaBackend::nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha, float beta,
                              float* dX, int lddx) {
  nf4_check_gemm_args("nf4_gemm_nn", M, W, lddy, static_cast<int>(W.rows), lddx, static_cast<int>(W.cols), beta);
  const int N = static_cast<int>(W.rows), K = static_cast<int>(W.cols);
  if (M == 0 || K == 0) return;
  if (alpha == 0.0f || N == 0) {  // no product: gemm_nn only scales dX
    gemm_nn(M, K, N, alpha, dY, lddy, nullptr, K, beta, dX, lddx);
    return;
  }
  const int chunk = weight_chunk_rows(N, K);
  float* w = static_cast<float*>(scratch(Scratch::Nf4Weight, static_cast<size_t>(chunk) * K * sizeof(float)));
  for (int n0 = 0; n0 < N; n0 += chunk) {
    const int n = N - n0 < chunk ? N - n0 : chunk;
    dequantize_rows(W, n0, n, w);
    gemm_nn(M, K, n, alpha, dY + n0, lddy, w, K, n0 == 0 ? beta : 1.0f, dX, lddx);
  }
}

int CudaBackend::weight_chunk_rows(int rows, int cols) const {
  size_t per_chunk = cols > 0 ? weight_chunk_values_ / static_cast<size_t>(cols) : static_cast<size_t>(rows);
  if (per_chunk < 1) return 1;  // one row wider than the bound: a chunk is one row
  // A multiple of 64 rows, so every chunk's slice of the output (Y + n0) or
  // input (dY + n0) stays 256-byte aligned, as the GEMM kernels like it.
  if (per_chunk >= 64) per_chunk -= per_chunk % 64;
  return per_chunk < static_cast<size_t>(rows) ? static_cast<int>(per_chunk) : (rows > 0 ? rows : 1);
}

void CudaBackend::set_weight_chunk_values(size_t values) {
  if (values < 1) throw Error("CudaBackend::set_weight_chunk_values: the bound must be at least 1 value");
  weight_chunk_values_ = values;
}

}  // namespace ps
