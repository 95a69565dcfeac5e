// Elementwise ops of the CUDA backend: residual add, bias add and its
// gradient, 16-bit to fp32 widening, fp32 to bf16 rounding. (fill/copy are in cuda_backend.cu,
// dropout and SwiGLU in their own files.)
#include "../../model/half.h"
#include "../../quant/bf16_round.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void add_kernel(float* y, const float* x, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

__global__ void add_bias_kernel(float* y, const float* b, size_t n, int N) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] += b[i % N];
}

// One thread per column walks every row in order with a double sum, as the
// CPU backend does: the same bits, no atomics. Adjacent threads read adjacent
// columns, so each row is read coalesced.
__global__ void bias_backward_kernel(const float* dy, int rows, int N, float* db) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= N) return;
  double acc = 0.0;
  for (int r = 0; r < rows; ++r) acc += dy[static_cast<size_t>(r) * N + c];
  db[c] += static_cast<float>(acc);
}

__global__ void half_to_float_kernel(const uint16_t* src, bool bf16, float* dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = bf16 ? __uint_as_float(static_cast<uint32_t>(src[i]) << 16) : __uint_as_float(f16_to_f32_bits(src[i]));
}

// The rounding of quant/bf16_round.h (the CPU's bits), not __float2bfloat16_rn:
// one definition on both backends, NaN handling included.
__global__ void bf16_round_kernel(float* x, uint16_t* bits, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint16_t h = bf16_bits_from_f32_bits(__float_as_uint(x[i]));
    x[i] = __uint_as_float(static_cast<uint32_t>(h) << 16);
    if (bits) bits[i] = h;
  }
}

}  // namespace

void CudaBackend::add(float* y, const float* x, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(add_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(y, x, n);
  cuda::check_launch("add");
}

void CudaBackend::add_bias(float* y, const float* b, int rows, int N) {
  if (rows <= 0 || N <= 0) return;
  const size_t n = static_cast<size_t>(rows) * N;
  PS_LAUNCH(add_bias_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(y, b, n, N);
  cuda::check_launch("add_bias");
}

void CudaBackend::bias_backward(const float* dy, int rows, int N, float* db) {
  if (rows <= 0 || N <= 0 || !db) return;
  PS_LAUNCH(bias_backward_kernel, cuda::blocks_for(N), cuda::kThreads, 0, 0)(dy, rows, N, db);
  cuda::check_launch("bias_backward");
}

void CudaBackend::half_to_float(const uint16_t* src, bool bf16, float* dst, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(half_to_float_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(src, bf16, dst, n);
  cuda::check_launch("half_to_float");
}

void CudaBackend::bf16_round(float* x, uint16_t* bits, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(bf16_round_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(x, bits, n);
  cuda::check_launch("bf16_round");
}

}  // namespace ps
