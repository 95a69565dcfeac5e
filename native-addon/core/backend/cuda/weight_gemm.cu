// The GEMMs against a stored weight (nf4.cu, half_gemm.cu) on the CUDA
// backend: the weight W [rows, cols] is widened to fp32 a chunk of rows at a
// time (at most weight_chunk_values() values, a multiple of 64 rows) into the
// Nf4Weight scratch slot, and each chunk goes through the backend's GEMM:
//   nt: Y[:, n0:n1] = alpha X W[n0:n1]^T + beta Y[:, n0:n1]. Each output
//       column is its own dot product, so every value is the one the GEMM on
//       the whole widened weight would compute for that column.
//   nn: dX = alpha dY[:, n0:n1] W[n0:n1] + beta' dX, beta' = beta for the
//       first chunk and 1 after it: the sum over rows runs chunk by chunk.
// A 14336 x 4096 weight would be 224 MiB widened whole, a 128256 x 2048
// lm_head 1 GiB; a chunk is 16 MiB.
//
// Under bf16 precision (weight_gemm_bf16) the GEMM's weight operand is bf16,
// so nothing is widened: a BF16 weight is read where it lies, F16 / NF4
// chunks (the same rows as above) are written as bf16 (8 MiB a chunk), and
// the bf16 GEMM (own kernel, or cuBLASLt's bf16 GEMM when in use) takes them
// as raw bf16. The operand bits are those the widen-then-round path gives
// (rounding a widened bf16 is the identity; F16 / NF4 values are rounded from
// their exact fp32 value), the chunks the same, so with the own kernel the
// results are the same bits.
#include "cuda_backend.h"
#include "error.h"
#include "gemm_bf16.h"

namespace ps {

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

void CudaBackend::weight_gemm(bool nt, int M, const float* in, int ld_in, int rows, int cols, float alpha, float beta,
                              float* out, int ld_out, const WidenRows& widen) {
  const int out_cols = nt ? rows : cols, reduced = nt ? cols : rows;
  if (M == 0 || out_cols == 0) return;
  if (alpha == 0.0f || reduced == 0) {  // no product: the GEMM only scales (or zeroes) out
    if (nt) gemm_nt(M, rows, cols, alpha, in, ld_in, nullptr, cols > 0 ? cols : 1, beta, out, ld_out);
    else gemm_nn(M, cols, rows, alpha, in, ld_in, nullptr, cols, beta, out, ld_out);
    return;
  }
  const int chunk = weight_chunk_rows(rows, cols);
  float* w = static_cast<float*>(scratch(Scratch::Nf4Weight, static_cast<size_t>(chunk) * cols * sizeof(float)));
  for (int n0 = 0; n0 < rows; n0 += chunk) {
    const int n = rows - n0 < chunk ? rows - n0 : chunk;
    widen(n0, n, w);
    if (nt) gemm_nt(M, n, cols, alpha, in, ld_in, w, cols, beta, out + n0, ld_out);
    else gemm_nn(M, cols, n, alpha, in + n0, ld_in, w, cols, n0 == 0 ? beta : 1.0f, out, ld_out);
  }
}

void CudaBackend::weight_gemm_bf16(bool nt, int M, const float* in, int ld_in, int rows, int cols, float alpha,
                                   float beta, float* out, int ld_out, const uint16_t* direct,
                                   const WidenRowsBf16& to_bf16) {
  const char* op = nt ? "weight_gemm_nt (bf16)" : "weight_gemm_nn (bf16)";
  const int out_cols = nt ? rows : cols, reduced = nt ? cols : rows;
  if (M == 0 || out_cols == 0) return;
  if (alpha == 0.0f || reduced == 0)  // no product: weight_gemm only scales (or zeroes) out
    return weight_gemm(nt, M, in, ld_in, rows, cols, alpha, beta, out, ld_out, [](int, int, float*) {});
  // cuBLASLt takes both operands as bf16: the input rounded once for all chunks.
  int in16_ld = 0;
  const uint16_t* in16 = bf16_copy_for_cublaslt(Scratch::Bf16OperandA, in, ld_in, M, nt ? cols : rows, in16_ld);
  // The product with W's rows [n0, n0 + n), held as bf16 in w (row stride ldw).
  auto product = [&](int n0, int n, const uint16_t* w, int ldw, float b) {
    if (nt) {
      if (in16 && try_gemm_bf16_cublaslt(op, false, true, M, n, cols, alpha, in16, in16_ld, w, ldw, b, out + n0,
                                         ld_out))
        return;
      cuda::gemm_bf16_nt(M, n, cols, alpha, in, ld_in, w, ldw, b, out + n0, ld_out);
    } else {
      if (in16 && try_gemm_bf16_cublaslt(op, false, false, M, cols, n, alpha, in16 + n0, in16_ld, w, ldw, b, out,
                                         ld_out))
        return;
      cuda::gemm_bf16_nn(M, cols, n, alpha, in + n0, ld_in, w, ldw, b, out, ld_out);
    }
  };
  // nt in place: each output column is its own dot product, so one product
  // over all rows equals the chunked one.
  if (direct && nt) return product(0, rows, direct, cols, beta);
  const int chunk = weight_chunk_rows(rows, cols);
  const int ld = direct ? cols : (cols + 7) / 8 * 8;  // scratch rows on 16-byte boundaries (cuBLASLt)
  uint16_t* w16 = direct ? nullptr
                         : static_cast<uint16_t*>(scratch(Scratch::Nf4Weight,
                                                          static_cast<size_t>(chunk) * ld * sizeof(uint16_t)));
  for (int n0 = 0; n0 < rows; n0 += chunk) {
    const int n = rows - n0 < chunk ? rows - n0 : chunk;
    const uint16_t* w = w16;
    if (direct) w = direct + static_cast<size_t>(n0) * cols;
    else to_bf16(n0, n, w16, ld);
    product(n0, n, w, ld, nt || n0 == 0 ? beta : 1.0f);
  }
}

}  // namespace ps
