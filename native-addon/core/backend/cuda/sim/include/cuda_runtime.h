// The simulator's stand-in for the CUDA runtime header. Only the PS_CUDA_SIM
// build puts sim/include on the include path, so a .cu file's own
// `#include <cuda_runtime.h>` picks the simulator there and the real header
// under nvcc: the kernels' sources stay the same for both.
#pragma once
#ifndef PS_CUDA_SIM
#error "sim/include is only for the CPU-side CUDA simulator build (PS_CUDA_SIM)"
#endif
#include "../cuda_sim.h"
