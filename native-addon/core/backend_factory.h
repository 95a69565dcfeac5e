// Choosing the backend the engine runs on ("cpu", "cuda"), and the devices
// this build can see. The CPU backend is always there; the CUDA one only in a
// build configured with PS_CUDA (see CMakeLists.txt): there the CUDA half of
// this file lives in backend/cuda/cuda_factory.cu, and this file's .cpp is
// compiled with PS_HAVE_CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace ps {

// One accelerator the runtime counts. A GPU that cannot report itself is
// listed too (with only its index and `error`), so the list stays in index
// order and "cuda:N" always means the runtime's device N.
struct DeviceInfo {
  int index = 0;          // "cuda:<index>": the CUDA runtime's device number
  std::string name;       // e.g. "NVIDIA GeForce RTX 4090"; empty when `error` is set
  int major = 0, minor = 0;  // compute capability
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  std::string error;      // why this GPU cannot be used (its query's message); empty when it can
};

// device: "cpu", "cuda" (the first GPU) or "cuda:N". threads: the CPU
// backend's thread count (<= 0: one per hardware thread). precision: the
// dense products' precision, "fp32", "bf16" (bf16 operands, fp32
// accumulation: CUDA GPUs of compute capability 8.0 and later) or "auto"
// (bf16 where the device has it, else fp32; the CPU computes in fp32).
// Throws ps::Error for an unknown name or precision, for "cuda" in a build
// without the CUDA backend, for bf16 where the device has no bf16 tensor
// cores, or when the device cannot be used.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads,
                                      const std::string& precision = "fp32");

// Every accelerator the runtime counts, in index order (entry N is
// "cuda:N"); one that cannot report itself has its `error` set. Empty
// without the CUDA backend, or when no driver / GPU is present. Never throws.
std::vector<DeviceInfo> list_devices();

// The list list_devices() builds, on plain data: one entry per index
// 0..count-1, in order, each with that index; `query(i)` describes GPU i, and
// when it throws the entry keeps only the index and the exception's message
// as `error` (a GPU left out would shift every later position off its
// index). Plain C++ so a CPU test can check it; never throws on a query's
// exception.
std::vector<DeviceInfo> device_list(int count, const std::function<DeviceInfo(int)>& query);

// True when this build contains the CUDA backend.
bool have_cuda_backend();

// In a build with the CUDA backend, when list_devices() is empty: why the
// CUDA runtime counts no GPU, and what to do (no driver; a driver older than
// the runtime this engine is built with: which CUDA version to update to;
// none visible). "" when it counts a GPU, or without the CUDA backend.
// Never throws.
std::string gpu_runtime_problem();

}  // namespace ps
