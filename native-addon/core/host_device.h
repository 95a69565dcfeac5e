// PS_HOST_DEVICE marks a small pure function that the CUDA backend's kernels
// call too (nvcc: __host__ __device__; plain C++: nothing), so a definition
// the backends must agree on bit for bit is written once.
#pragma once

#ifdef __CUDACC__
#define PS_HOST_DEVICE __host__ __device__
#else
#define PS_HOST_DEVICE
#endif
