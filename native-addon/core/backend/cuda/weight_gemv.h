// Fused GEMVs of the CUDA backend for generation: Y[M, N] = alpha X[M, K] W^T
// + beta Y with a few rows M (decode: one token, or a handful), W a stored
// weight read as it lies (4-bit NF4 codes + absmax, 16-bit BF16/F16, fp32)
// and dequantized / widened in registers, never into a scratch buffer.
// Every weight value is bit-identical to what the dequantize / widen kernels
// produce; in bf16 precision x and the weight value are rounded to bf16
// (nearest even) before the product, as the bf16 GEMM rounds its operands.
// Sums in fp32 in a fixed order (deterministic). Argument checks are the
// caller's (the backend op). No CUDA types here.
#pragma once

#include "backend.h"

namespace ps {
namespace cuda {

// Up to this many rows the GEMV replaces the chunked GEMM. It keeps x for a
// 1024-wide slice of K in shared memory (M x 4.5 KiB: 36 KiB at 8, inside the
// 48 KiB a block may declare statically) and 2 x M fp32 accumulators a thread
// (16 at 8). Up to 8 rows one pass over the weight, dequantized once per
// row pair, costs less than writing and re-reading it widened (8 bytes a
// value for the chunked path against 0.5 (NF4) or 2 (16-bit)); past that, the
// tensor-core GEMM's reuse of each weight value across 128 rows wins.
constexpr int kGemvMaxRows = 8;

// Whether the GEMV takes the product: 1 <= M <= kGemvMaxRows and a product
// to compute (N, K > 0, alpha != 0; the rest is the GEMMs' business).
inline bool gemv_applies(int M, int N, int K, float alpha) {
  return M >= 1 && M <= kGemvMaxRows && N > 0 && K > 0 && alpha != 0.0f;
}

void gemv_nf4_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta, float* Y, int ldy,
                 bool bf16);
void gemv_half_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y, int ldy,
                  bool bf16);
// W [N, K] fp32 with row stride ldw (gemm_nt's B).
void gemv_f32_nt(int M, int N, int K, float alpha, const float* X, int ldx, const float* W, int ldw, float beta,
                 float* Y, int ldy, bool bf16);

}  // namespace cuda
}  // namespace ps
