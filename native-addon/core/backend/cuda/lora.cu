// The LoRA branch on the CUDA backend, as GEMMs through the rank-r
// bottleneck (the same four products as backend/cpu/lora.cpp; B·A is never
// formed). A fused kernel (X·Aᵀ kept in shared memory) comes later.
#include <string>

#include "cuda_backend.h"
#include "error.h"

namespace ps {

namespace {
void check_lora_shape(const char* op, int M, int N, int K, int r) {
  if (M < 0 || N < 0 || K < 0 || r < 0)
    throw Error(std::string(op) + ": negative dimension (M=" + std::to_string(M) + ", N=" + std::to_string(N) +
                ", K=" + std::to_string(K) + ", r=" + std::to_string(r) + ")");
}
}  // namespace

void CudaBackend::lora_forward(int M, int N, int K, int r, float s, const float* X, const float* A,
                               const float* B, float* H, float* Y) {
  check_lora_shape("lora_forward", M, N, K, r);
  if (r == 0) return;
  gemm_nt(M, r, K, 1.0f, X, K, A, K, 0.0f, H, r);
  gemm_nt(M, N, r, s, H, r, B, r, 1.0f, Y, N);
}

void CudaBackend::lora_backward(int M, int N, int K, int r, float s, const float* X, const float* A,
                                const float* B, const float* H, const float* dY, float* dH, float* dA,
                                float* dB, float* dX) {
  check_lora_shape("lora_backward", M, N, K, r);
  if (r == 0) return;
  if (dB) gemm_tn(N, r, M, s, dY, N, H, r, 1.0f, dB, r);
  if (!dA && !dX) return;
  gemm_nn(M, r, N, s, dY, N, B, r, 0.0f, dH, r);
  if (dA) gemm_tn(r, K, M, 1.0f, dH, r, X, K, 1.0f, dA, K);
  if (dX) gemm_nn(M, K, r, 1.0f, dH, r, A, K, 1.0f, dX, K);
}

}  // namespace ps
