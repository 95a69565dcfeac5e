// SwiGLU on the CUDA backend: out = silu(gate) * up, silu(g) = g / (1 + exp(-g))
// in fp32 as torch computes it. Backward (accumulating), s = sigmoid(g):
//   dgate += dout * up * s * (1 + g (1 - s))      dup += dout * silu(g)
// expf here and the CPU's vm_exp differ by an ulp or two: parity within 1e-6 relative.
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void swiglu_forward_kernel(const float* gate, const float* up, float* out, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void swiglu_backward_kernel(const float* gate, const float* up, const float* dout, float* dgate,
                                       float* dup, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    const float s = 1.0f / (1.0f + expf(-g));
    if (dgate) dgate[i] += dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
    if (dup) dup[i] += dout[i] * (g / (1.0f + expf(-g)));
  }
}

}  // namespace

void CudaBackend::swiglu_forward(const float* gate, const float* up, float* out, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(swiglu_forward_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(gate, up, out, n);
  cuda::check_launch("swiglu_forward");
}

void CudaBackend::swiglu_backward(const float* gate, const float* up, const float* dout, float* dgate,
                                  float* dup, size_t n) {
  if (n == 0 || (!dgate && !dup)) return;
  PS_LAUNCH(swiglu_backward_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(gate, up, dout, dgate, dup, n);
  cuda::check_launch("swiglu_backward");
}

}  // namespace ps
