// Shared pieces of the CUDA backend's .cu files: error checks that throw
// ps::Error (never abort), launch-size helpers, the bad-index status word and
// fixed-order block reductions. Device helpers are `static` / templates, so
// every .cu file compiles alone (no relocatable device code).
#pragma once

#include <cuda_runtime.h>

// Every kernel launch is spelled PS_LAUNCH(kernel, grid, block, shared_bytes,
// stream)(args...), never with <<<>>> directly, so that the same source also
// builds as plain C++ for the CPU-side CUDA simulator (sim/, PS_CUDA_SIM).
// A template kernel with several arguments goes through a pointer first:
//   auto* k = &my_kernel<T, 64>; PS_LAUNCH(k, grid, block, 0, stream)(...);
// Dynamic shared memory is declared with PS_DYNAMIC_SHARED(type, name).
#ifndef PS_CUDA_SIM
#define PS_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>
#define PS_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#else
// The simulator's <cuda_runtime.h> (sim/include) brought in sim/sim_launch.h:
// PS_LAUNCH validates the configuration like the hardware, then runs the
// grid on fibers; PS_DYNAMIC_SHARED points at the block's dynamic buffer.
#if !defined(PS_LAUNCH) || !defined(PS_DYNAMIC_SHARED)
#error "PS_CUDA_SIM build without the simulator's include directory (core/backend/cuda/sim/include)"
#endif
#endif

#include <cstddef>
#include <cstdint>
#include <string>

#include "error.h"

namespace ps {
namespace cuda {

// Throws ps::Error("CUDA error in <what>: <message> (<name>)").
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* what);

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw_cuda_error(err, what);
}
// After a kernel launch: a bad launch configuration shows here, an error
// inside the kernel shows at the next synchronising call.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

constexpr int kThreads = 256;

inline unsigned blocks_for(size_t n, int threads = kThreads) {
  size_t b = (n + threads - 1) / threads;
  // Grid-stride loops cover the rest; 2^20 blocks keep the grid in range.
  if (b > (size_t(1) << 20)) b = size_t(1) << 20;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// A pass over a [rows, cols] matrix with no division per element (a 64-bit
// divide is tens of instructions, more than the memory time of an
// elementwise pass): the grid's x covers the columns, one thread each
// (adjacent threads, adjacent columns), its y strides over the rows:
//   const int c = blockIdx.x * blockDim.x + threadIdx.x;  if (c >= cols) return;
//   for (int r = blockIdx.y; r < rows; r += gridDim.y) ...
// At most 2^20 blocks in all, as blocks_for, and 65535 in y (the limit of y).
inline dim3 row_col_grid(int rows, int cols, int threads = kThreads) {
  const unsigned x = cols > 0 ? (static_cast<unsigned>(cols) + threads - 1) / threads : 1u;
  unsigned y = rows > 0 ? static_cast<unsigned>(rows) : 1u;
  const unsigned cap = (1u << 20) / x > 0 ? (1u << 20) / x : 1u;
  if (y > cap) y = cap;
  if (y > 65535u) y = 65535u;
  return dim3(x, y);
}

// ---- the bad-index status word (CudaBackend::check_status reads it) -------
enum StatusCode : int {
  kStatusOk = 0,
  kStatusEmbeddingForwardId = 1,
  kStatusEmbeddingBackwardId = 2,
  kStatusRopeForwardPos = 3,
  kStatusRopeBackwardPos = 4,
  kStatusEmbeddingHalfId = 5,     // embedding_forward_half: id outside [0, table_rows)
  kStatusCrossEntropyTarget = 6,  // cross_entropy_rows: target outside [0, V), not -100
};

// Records the first bad index only: status = [code, row, value].
static __device__ inline void report_bad_index(int* status, int code, int row, int value) {
  if (atomicCAS(status, 0, code) == 0) {
    status[1] = row;
    status[2] = value;
  }
}

// ---- fixed-order block reductions ------------------------------------------
// blockDim.x must be a multiple of 32 and at most 1024. The tree shape depends
// only on blockDim.x, so the result is the same on every run. `shared` needs
// 32 elements. Every thread gets the result.
template <typename T>
static __device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename T>
static __device__ inline T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T r = lane < warps ? shared[lane] : T(0);
  if (warp == 0) r = warp_sum(r);
  if (threadIdx.x == 0) shared[0] = r;
  __syncthreads();
  return shared[0];
}

static __device__ inline float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float r = lane < warps ? shared[lane] : -INFINITY;
  if (warp == 0) r = warp_max(r);
  if (threadIdx.x == 0) shared[0] = r;
  __syncthreads();
  return shared[0];
}

}  // namespace cuda
}  // namespace ps
