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
#include "cuda_backend.h"
#include "error.h"

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

}  // namespace ps
