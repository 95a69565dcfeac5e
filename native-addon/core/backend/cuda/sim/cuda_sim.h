// PEFT Studio's CPU-side CUDA simulator: the subset of the CUDA runtime and
// of the kernel language that core/backend/cuda/*.cu use, so the same
// sources compile as plain C++ (g++, PS_CUDA_SIM, -ffp-contract=off) and the
// kernels RUN in CTest on machines without a GPU. A test vehicle only: the
// product never links it (see ../README.md, "Simulator").
//
//   sim_types.h    dim3 / uint3, cudaError_t, cudaDeviceProp, streams, events
//   sim_runtime.h  the host API (cudaMalloc, cudaMemcpy, ...)
//   sim_kernel.h   the kernel language: qualifiers, threadIdx & co, barriers,
//                  warp collectives, atomics, intrinsics, device math
//   sim_launch.h   PS_LAUNCH / PS_DYNAMIC_SHARED (validated launches)
#pragma once

#include "sim_types.h"
#include "sim_runtime.h"
#include "sim_kernel.h"
#include "sim_launch.h"
