// RMSNorm on the CUDA backend, as Hugging Face's LlamaRMSNorm in fp32:
//   y = w * (x * rsqrt(mean(x^2) + eps))
// Backward, r = rstd of the row, g = w * dy:
//   dx += r g - x r^3 mean(g * x)        dw += sum over rows of dy * (x r)
// One block per row for y/dx (a fixed-shape tree sum); dw: one thread per
// column walking the rows in order with a double sum (the CPU's order).
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

constexpr int kRowThreads = 256;

__global__ void rmsnorm_forward_kernel(const float* x, const float* w, float* y, float* rstd, int D, float eps) {
  __shared__ float red[32];
  const size_t row = blockIdx.x;
  const float* xr = x + row * D;
  float* yr = y + row * D;
  float ss = 0.0f;
  for (int j = threadIdx.x; j < D; j += blockDim.x) ss += xr[j] * xr[j];
  ss = cuda::block_sum(ss, red);
  const float rs = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  if (rstd && threadIdx.x == 0) rstd[row] = rs;
  for (int j = threadIdx.x; j < D; j += blockDim.x) yr[j] = w[j] * (xr[j] * rs);
}

__global__ void rmsnorm_backward_dx_kernel(const float* dy, const float* x, const float* w, const float* rstd,
                                           int D, float* dx) {
  __shared__ float red[32];
  const size_t row = blockIdx.x;
  const float* xr = x + row * D;
  const float* dyr = dy + row * D;
  float* dxr = dx + row * D;
  const float rs = rstd[row];
  float dot = 0.0f;
  for (int j = threadIdx.x; j < D; j += blockDim.x) dot += w[j] * dyr[j] * xr[j];
  dot = cuda::block_sum(dot, red);
  const float c = dot * rs * rs * rs / static_cast<float>(D);
  for (int j = threadIdx.x; j < D; j += blockDim.x) dxr[j] += rs * (w[j] * dyr[j]) - xr[j] * c;
}

__global__ void rmsnorm_backward_dw_kernel(const float* dy, const float* x, const float* rstd, int rows, int D,
                                           float* dw) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= D) return;
  double acc = 0.0;
  for (int r = 0; r < rows; ++r) {
    const size_t i = static_cast<size_t>(r) * D + c;
    acc += __fmul_rn(dy[i], __fmul_rn(x[i], rstd[r]));
  }
  dw[c] += static_cast<float>(acc);
}

}  // namespace

void CudaBackend::rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int rows, int D,
                                  float eps) {
  if (rows <= 0 || D <= 0) return;
  PS_LAUNCH(rmsnorm_forward_kernel, rows, kRowThreads, 0, 0)(x, w, y, rstd, D, eps);
  cuda::check_launch("rmsnorm_forward");
}

void CudaBackend::rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int rows,
                                   int D, float* dx, float* dw) {
  if (rows <= 0 || D <= 0) return;
  if (dx) {
    PS_LAUNCH(rmsnorm_backward_dx_kernel, rows, kRowThreads, 0, 0)(dy, x, w, rstd, D, dx);
    cuda::check_launch("rmsnorm_backward (dx)");
  }
  if (dw) {
    PS_LAUNCH(rmsnorm_backward_dw_kernel, cuda::blocks_for(D), cuda::kThreads, 0, 0)(dy, x, rstd, rows, D, dw);
    cuda::check_launch("rmsnorm_backward (dw)");
  }
}

}  // namespace ps
