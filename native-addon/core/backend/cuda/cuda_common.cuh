// Shared pieces of the CUDA backend's .cu files: error checks that throw
// ps::Error (never abort), launch-size helpers, the bad-index status word and
// fixed-order block reductions. Device helpers are `static` / templates, so
// every .cu file compiles alone (no relocatable device code).
#pragma once

#include <cuda_runtime.h>

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

// ---- the bad-index status word (CudaBackend::check_status reads it) -------
enum StatusCode : int {
  kStatusOk = 0,
  kStatusEmbeddingForwardId = 1,
  kStatusEmbeddingBackwardId = 2,
  kStatusRopeForwardPos = 3,
  kStatusRopeBackwardPos = 4,
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
