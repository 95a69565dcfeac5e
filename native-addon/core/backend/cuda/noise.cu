// NEFTune's uniform noise on the device: the CPU's hash and value, the add
// written with explicit roundings (no FMA contraction), so the CPU's bits.
#include "../cpu/dropout_mask.h"
#include "../cpu/uniform_noise.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void add_uniform_noise_kernel(float* x, size_t n, float magnitude, DropoutKey k) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    x[i] = __fadd_rn(x[i], __fmul_rn(magnitude, symmetric_uniform(dropout_u24(k, i))));
}

}  // namespace

void CudaBackend::add_uniform_noise(float* x, size_t n, float magnitude, uint64_t key) {
  if (n == 0 || magnitude == 0.0f) return;
  PS_LAUNCH(add_uniform_noise_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(x, n, magnitude, dropout_key(key));
  cuda::check_launch("add_uniform_noise");
}

}  // namespace ps
