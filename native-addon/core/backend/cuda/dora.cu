// DoRA's three small ops on the device (backend.h), written with explicit
// roundings (_rn: no FMA contraction) in the CPU backend's order, so they
// give the CPU's bits: the per-column factor, the magnitude's gradient
// (column_dot_plan.h's chunks: one thread per column and chunk, reads
// coalesced across columns, then the chunk sums in order), and the weight
// norm from its parts (one thread per row).
#include "../column_dot_plan.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void scale_columns_kernel(const float* x, const float* f, float offset, size_t n, int N, bool add,
                                     float* y) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = __fmul_rn(x[i], __fadd_rn(f[i % N], offset));
    y[i] = add ? __fadd_rn(y[i], v) : v;
  }
}

// Chunk sums: thread (column c, chunk k) sums its chunk's rows in order.
__global__ void column_dot_chunks_kernel(const float* a, const float* b, int rows, int N, double* part) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= N) return;
  const int chunks = (rows + kColumnDotRows - 1) / kColumnDotRows;
  for (int k = blockIdx.y; k < chunks; k += gridDim.y) {  // y holds at most 65535 blocks
    const int r0 = k * kColumnDotRows, r1 = min(rows, r0 + kColumnDotRows);
    double acc = 0.0;
    for (int r = r0; r < r1; ++r) {
      const size_t i = static_cast<size_t>(r) * N + c;
      acc = __dadd_rn(acc, __dmul_rn(static_cast<double>(a[i]), static_cast<double>(b[i])));
    }
    part[static_cast<size_t>(k) * N + c] = acc;
  }
}

// One thread per column adds its chunk sums in chunk order (from 0.0, as the CPU).
__global__ void column_dot_finish_kernel(const double* part, int chunks, const float* scale, int N, float* out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= N) return;
  double total = 0.0;
  for (int k = 0; k < chunks; ++k) total = __dadd_rn(total, part[static_cast<size_t>(k) * N + c]);
  out[c] = __fadd_rn(out[c], static_cast<float>(__dmul_rn(static_cast<double>(scale[c]), total)));
}

__global__ void dora_norm_kernel(int N, int r, float s, const float* w_sq, const float* PT, const float* B,
                                 const float* BC, const float* m, float* inv_norm, float* factor) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= N) return;
  double cross = 0.0, lora_sq = 0.0;
  for (int k = 0; k < r; ++k) {
    const double bjk = B[static_cast<size_t>(j) * r + k];
    cross = __dadd_rn(cross, __dmul_rn(bjk, static_cast<double>(PT[static_cast<size_t>(k) * N + j])));
    lora_sq = __dadd_rn(lora_sq, __dmul_rn(bjk, static_cast<double>(BC[static_cast<size_t>(j) * r + k])));
  }
  const double sd = s;
  double sq = __dadd_rn(__dadd_rn(static_cast<double>(w_sq[j]), __dmul_rn(__dmul_rn(2.0, sd), cross)),
                        __dmul_rn(__dmul_rn(sd, sd), lora_sq));
  if (!(sq > 0.0)) sq = 0.0;  // the CPU's std::max(0.0, sq): below zero (rounding) and NaN give 0
  const double n = sqrt(sq);
  inv_norm[j] = static_cast<float>(__ddiv_rn(1.0, n));
  factor[j] = static_cast<float>(__ddiv_rn(static_cast<double>(m[j]), n));
}

}  // namespace

void CudaBackend::scale_columns(const float* x, const float* f, float offset, int rows, int N, float beta,
                                float* y) {
  if (rows <= 0 || N <= 0) return;
  const size_t n = static_cast<size_t>(rows) * N;
  PS_LAUNCH(scale_columns_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(x, f, offset, n, N, beta != 0.0f, y);
  cuda::check_launch("scale_columns");
}

void CudaBackend::column_dot(const float* a, const float* b, const float* scale, int rows, int N, float* out) {
  if (rows <= 0 || N <= 0) return;
  const int chunks = column_dot_chunks(rows);
  // The Reduce slot: like every user of it, its contents do not outlive this op.
  double* part = static_cast<double*>(scratch(Scratch::Reduce, column_dot_scratch_bytes(rows, N)));
  const dim3 grid(cuda::blocks_for(N), chunks < 65535 ? chunks : 65535);
  PS_LAUNCH(column_dot_chunks_kernel, grid, cuda::kThreads, 0, 0)(a, b, rows, N, part);
  cuda::check_launch("column_dot");
  PS_LAUNCH(column_dot_finish_kernel, cuda::blocks_for(N), cuda::kThreads, 0, 0)(part, chunks, scale, N, out);
  cuda::check_launch("column_dot (finish)");
}

void CudaBackend::dora_norm(int N, int r, float s, const float* w_sq, const float* PT, const float* B,
                            const float* BC, const float* m, float* inv_norm, float* factor) {
  if (N <= 0) return;
  PS_LAUNCH(dora_norm_kernel, cuda::blocks_for(N), cuda::kThreads, 0, 0)(N, r, s, w_sq, PT, B, BC, m, inv_norm,
                                                                          factor);
  cuda::check_launch("dora_norm");
}

}  // namespace ps
