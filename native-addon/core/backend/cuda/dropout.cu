// Inverted dropout on the CUDA backend with the CPU backend's counter-based
// mask, bit for bit: the kernels call backend/cpu/dropout_mask.h's own
// dropout_u24 (element i is kept iff u24(key, i) >= ceil(p * 2^24)).
// The same (key, i) gives the same mask on every backend, so a run can move
// between CPU and GPU; test_cuda_parity checks the masks for equality.
// The arithmetic is spelled with _rn intrinsics (no fused multiply-add), as
// the CPU's portable path rounds it.
#include <cmath>
#include <string>

#include "../cpu/dropout_mask.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

template <bool kAccumulate>
__global__ void dropout_kernel(const float* in, float* out, size_t n, DropoutKey k, uint32_t threshold, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint32_t u24 = dropout_u24(k, i);
    const float factor = u24 >= threshold ? scale : 0.0f;
    const float v = __fmul_rn(in[i], factor);
    if (kAccumulate) out[i] = __fadd_rn(out[i], v);
    else out[i] = v;
  }
}

void check_p(const char* op, float p) {
  if (!(p >= 0.0f && p <= 1.0f))
    throw Error(std::string(op) + ": dropout probability must be in [0, 1], got " + std::to_string(p) +
                " (check lora_dropout)");
}

void run(const float* in, float* out, size_t n, float p, uint64_t key, bool accumulate, const char* op) {
  const DropoutKey k = dropout_key(key);
  const uint32_t threshold = dropout_threshold(p);
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;  // host fp32, as the CPU computes it
  const unsigned blocks = cuda::blocks_for(n);
  if (accumulate)
    PS_LAUNCH(dropout_kernel<true>, blocks, cuda::kThreads, 0, 0)(in, out, n, k, threshold, scale);
  else
    PS_LAUNCH(dropout_kernel<false>, blocks, cuda::kThreads, 0, 0)(in, out, n, k, threshold, scale);
  cuda::check_launch(op);
}

}  // namespace

void CudaBackend::dropout_forward(const float* x, float* y, size_t n, float p, uint64_t key) {
  check_p("dropout_forward", p);
  if (n == 0) return;
  run(x, y, n, p, key, false, "dropout_forward");
}

void CudaBackend::dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t key) {
  check_p("dropout_backward", p);
  if (!dx || n == 0) return;
  run(dy, dx, n, p, key, true, "dropout_backward");
}

}  // namespace ps
