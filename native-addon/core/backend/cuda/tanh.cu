// tanh and its backward for the prefix-tuning MLP, in place on the device
// (the engine used to download, compute on the host and upload). The
// backward is the CPU's expression with explicit roundings (_rn: no FMA
// contraction), so given the same y it gives the CPU's bits; tanhf itself
// may differ from the host's libm by an ulp (test_cuda_parity's tolerance).
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void tanh_forward_kernel(float* x, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    x[i] = tanhf(x[i]);
}

__global__ void tanh_backward_kernel(const float* y, float* dx, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dx[i] = __fmul_rn(dx[i], __fsub_rn(1.0f, __fmul_rn(y[i], y[i])));
}

}  // namespace

void CudaBackend::tanh_forward(float* x, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(tanh_forward_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(x, n);
  cuda::check_launch("tanh_forward");
}

void CudaBackend::tanh_backward(const float* y, float* dx, size_t n) {
  if (n == 0) return;
  PS_LAUNCH(tanh_backward_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(y, dx, n);
  cuda::check_launch("tanh_backward");
}

}  // namespace ps
