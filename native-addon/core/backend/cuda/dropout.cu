// Inverted dropout on the CUDA backend with the CPU backend's counter-based
// mask (backend/cpu/dropout_mask.h), bit for bit: element i is kept iff
// u24(key, i) >= ceil(p * 2^24), where u24 is two keyed rounds of murmur3's
// 32-bit finalizer over the index, the key spread by splitmix64's mixer.
// The same (key, i) gives the same mask on every backend, so a run can move
// between CPU and GPU; test_cuda_parity checks the masks for equality.
// The arithmetic is spelled with _rn intrinsics (no fused multiply-add), as
// the CPU's portable path rounds it.
#include <cmath>
#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

struct Key {
  uint32_t k0, k1;
};

Key dropout_key_of(uint64_t key) {  // host: dropout_key() of dropout_mask.h
  uint64_t z = key;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return {static_cast<uint32_t>(z), static_cast<uint32_t>(z >> 32)};
}

__device__ inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

template <bool kAccumulate>
__global__ void dropout_kernel(const float* in, float* out, size_t n, Key k, uint32_t threshold, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint32_t u24 =
        fmix32(fmix32(static_cast<uint32_t>(i) ^ k.k0) ^ k.k1 ^ static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32)) >> 8;
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
  const Key k = dropout_key_of(key);
  const uint32_t threshold = static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;  // host fp32, as the CPU computes it
  if (accumulate) dropout_kernel<true><<<cuda::blocks_for(n), cuda::kThreads>>>(in, out, n, k, threshold, scale);
  else dropout_kernel<false><<<cuda::blocks_for(n), cuda::kThreads>>>(in, out, n, k, threshold, scale);
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
