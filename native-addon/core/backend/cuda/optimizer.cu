// Optimizer steps on the CUDA backend with torch's arithmetic, exactly as
// backend/cpu/optimizer.cpp: the scalars (bias corrections, step size) are
// computed on the host in double and rounded to float where torch hands them
// to a float kernel; the per-element update is the CPU's expression. And the
// squared norm for gradient clipping, in double, in fixed blocks.
#include <cmath>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, size_t n, float decay, float w1,
                             float w2, float beta2, bool lerp_low, float neg_step, float bias2_sqrt, float eps,
                             float grad_scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float gi = g[i] * grad_scale;
    const float pi = p[i] * decay;
    const float mi = lerp_low ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - w1);
    const float vi = v[i] * beta2 + w2 * gi * gi;
    const float denom = sqrtf(vi) / bias2_sqrt + eps;
    p[i] = pi + neg_step * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void sgd_kernel(float* p, const float* g, size_t n, float lr, float weight_decay, float grad_scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float d = g[i] * grad_scale + weight_decay * p[i];
    p[i] = p[i] + (-lr) * d;
  }
}

constexpr size_t kSumBlock = 16384;  // elements per partial sum
constexpr int kSumThreads = 256;

__global__ void sum_squares_kernel(const float* x, size_t n, double* part) {
  __shared__ double red[32];
  const size_t b0 = blockIdx.x * kSumBlock;
  const size_t end = b0 + kSumBlock < n ? b0 + kSumBlock : n;
  double s = 0.0;
  for (size_t i = b0 + threadIdx.x; i < end; i += blockDim.x) s += static_cast<double>(x[i]) * x[i];
  s = cuda::block_sum(s, red);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

}  // namespace

void CudaBackend::adamw_step(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1,
                             float beta2, float eps, float weight_decay, int t, float grad_scale) {
  if (t < 1) throw Error("adamw_step: the step count starts at 1, got " + std::to_string(t));
  if (n == 0) return;
  const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const float w1 = static_cast<float>(1.0 - beta1);
  const float w2 = static_cast<float>(1.0 - beta2);
  const float neg_step = static_cast<float>(-(static_cast<double>(lr) / bias1));
  const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
  PS_LAUNCH(adamw_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)
      (p, g, m, v, n, decay, w1, w2, beta2, w1 < 0.5f, neg_step, bias2_sqrt, eps, grad_scale);
  cuda::check_launch("adamw_step");
}

void CudaBackend::sgd_step(float* p, const float* g, size_t n, float lr, float weight_decay, float grad_scale) {
  if (n == 0) return;
  PS_LAUNCH(sgd_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(p, g, n, lr, weight_decay, grad_scale);
  cuda::check_launch("sgd_step");
}

double CudaBackend::sum_squares(const float* x, size_t n) {
  if (n == 0) return 0.0;
  const size_t blocks = (n + kSumBlock - 1) / kSumBlock;
  if (blocks > 0x7fffffffu) throw Error("sum_squares: tensor of " + std::to_string(n) + " values is too large");
  double* part = static_cast<double*>(scratch(Scratch::Reduce, blocks * sizeof(double)));
  PS_LAUNCH(sum_squares_kernel, static_cast<unsigned>(blocks), kSumThreads, 0, 0)(x, n, part);
  cuda::check_launch("sum_squares");
  std::vector<double> host(blocks);
  download(host.data(), part, blocks * sizeof(double));
  double sum = 0.0;
  for (double s : host) sum += s;
  return sum;
}

}  // namespace ps
