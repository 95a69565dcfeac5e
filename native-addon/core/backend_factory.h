// Choosing the backend the engine runs on ("cpu", "cuda"), and the devices
// this build can see. The CPU backend is always there; the CUDA one only in a
// build configured with PS_CUDA (see CMakeLists.txt): there the CUDA half of
// this file lives in backend/cuda/cuda_factory.cu, and this file's .cpp is
// compiled with PS_HAVE_CUDA.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace ps {

// One accelerator the engine could run on.
struct DeviceInfo {
  int index = 0;          // "cuda:<index>"
  std::string name;       // e.g. "NVIDIA GeForce RTX 4090"
  int major = 0, minor = 0;  // compute capability
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
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

// The accelerators this build can use: empty without the CUDA backend, or
// when no driver / GPU is present. Never throws.
std::vector<DeviceInfo> list_devices();

// True when this build contains the CUDA backend.
bool have_cuda_backend();

}  // namespace ps
