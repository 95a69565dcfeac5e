// The host side of the CUDA runtime API, as far as the backend uses it.
// Semantics follow the real runtime where a test can tell the difference:
//  - a failing call returns its error AND records it for cudaGetLastError
//    (which returns and clears it), per host thread;
//  - cudaMalloc is 256-byte aligned, counts against a device memory limit
//    (env PS_CUDA_SIM_MEMORY_MB, default 4096) and fails with
//    cudaErrorMemoryAllocation beyond it; each buffer ends just before a
//    PROT_NONE guard page, so an out-of-bounds access past the end faults
//    (the simulator's SIGSEGV handler names the kernel and the buffer); a
//    freed buffer's addresses stay reserved, so a use after free is named;
//  - copies and memsets check that device ranges lie inside one allocation;
//  - everything is synchronous: streams and events exist but never wait.
#pragma once

#include "sim_control.h"

#include <cstddef>

#include "sim_types.h"

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = 0);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

namespace ps {
namespace cudasim {

// Records err as the calling thread's last error (if not success); returns err.
cudaError_t set_last_error(cudaError_t err);

// Device memory bookkeeping (memory.cpp).
struct Allocation {
  const char* base = nullptr;  // what cudaMalloc returned
  size_t bytes = 0;            // what was asked for
};
// The allocation containing [p, p + bytes), or nullptr.
const Allocation* find_allocation(const void* p, size_t bytes);
// True when p is a device pointer (inside some allocation, or one past its end).
bool is_device_pointer(const void* p);
size_t memory_limit();
size_t memory_used();
void* device_alloc(size_t bytes);  // nullptr when over the limit
bool device_free(void* p);         // false: not a device allocation

// Per-function opt-in above 48 KiB of dynamic shared memory (cudaFuncSetAttribute).
void set_max_dynamic_shared(const void* fn, int bytes);
size_t max_dynamic_shared(const void* fn);

}  // namespace cudasim
}  // namespace ps

template <typename T>
cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t bytes, size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice);
template <typename T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t bytes, size_t offset = 0,
                                 cudaMemcpyKind kind = cudaMemcpyDeviceToHost);

// __constant__ / __device__ variables are ordinary globals in the simulator:
// the symbol copies are bounds-checked memcpys.
template <typename T>
cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t bytes, size_t offset, cudaMemcpyKind kind) {
  if (offset + bytes > sizeof(T) || kind == cudaMemcpyDeviceToHost) return ps::cudasim::set_last_error(cudaErrorInvalidValue);
  __builtin_memcpy(reinterpret_cast<char*>(const_cast<T*>(&symbol)) + offset, src, bytes);
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t bytes, size_t offset, cudaMemcpyKind kind) {
  if (offset + bytes > sizeof(T) || kind == cudaMemcpyHostToDevice) return ps::cudasim::set_last_error(cudaErrorInvalidValue);
  __builtin_memcpy(dst, reinterpret_cast<const char*>(&symbol) + offset, bytes);
  return cudaSuccess;
}

// The code a kernel runs: every kernel of a simulated build has the same (sim_control.h's code arch).
template <typename F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, F* fn) {
  if (!attr || !fn) return ps::cudasim::set_last_error(cudaErrorInvalidValue);
  attr->ptxVersion = attr->binaryVersion = ps::cudasim::code_arch();
  return cudaSuccess;
}

// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes): the opt-in the
// hardware needs before a launch may use more than 48 KiB of shared memory (up to 227 KiB on sm_90).
template <typename F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > 227 * 1024) return ps::cudasim::set_last_error(cudaErrorInvalidValue);
    ps::cudasim::set_max_dynamic_shared(reinterpret_cast<const void*>(fn), value);
  }
  return cudaSuccess;
}
