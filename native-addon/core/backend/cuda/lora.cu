// The LoRA branch on the CUDA backend. B·A (an N x K matrix) is never formed.
//
// Dispatch rule: 1 <= r <= 128 with M, N, K >= 1 runs the fused kernels of
// lora_fused.cu (forward: X read once, Y read and written once; backward:
// dY and X each read once, deterministic two-stage reductions for dA / dB;
// above rank 64 as two rank slices, each reading X and dY once). Ranks over
// 128 (products no longer skinny, where general GEMMs are at home) and
// empty shapes take the four GEMMs, the products of backend/cpu/lora.cpp,
// through gemm_nt/nn/tn (cuBLASLt or the own kernels).
//
// PEFT_STUDIO_LORA=gemm (read once per process) forces the GEMM path for
// every rank: an A/B switch for benchmarks and diagnosis.
//
// Precision: under GemmPrecision::Bf16 the fused kernels round every operand
// of the four products to bf16 while staging it (H and dH too, as operands
// of the second products) and accumulate in fp32: the GEMM path's bf16
// semantics (tests/bf16_reference_backend.h) up to the fp32 summation order.
#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda_backend.h"
#include "error.h"
#include "lora_fused.h"

namespace ps {

namespace {
bool use_fused(int M, int N, int K, int r) {
  static const bool forced_gemm = [] {
    const char* v = std::getenv("PEFT_STUDIO_LORA");
    return v && std::strcmp(v, "gemm") == 0;
  }();
  return !forced_gemm && cuda::lora_fused_supported(M, N, K, r);
}

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
  if (use_fused(M, N, K, r)) {
    const size_t floats = cuda::lora_fused_forward_scratch_floats(M, N, K, r);
    float* partials = floats ? static_cast<float*>(scratch(Scratch::Reduce, floats * sizeof(float))) : nullptr;
    cuda::lora_fused_forward(M, N, K, r, s, X, A, B, H, Y, partials, precision_ == GemmPrecision::Bf16);
    return;
  }
  gemm_nt(M, r, K, 1.0f, X, K, A, K, 0.0f, H, r);
  gemm_nt(M, N, r, s, H, r, B, r, 1.0f, Y, N);
}

void CudaBackend::lora_backward(int M, int N, int K, int r, float s, const float* X, const float* A,
                                const float* B, const float* H, const float* dY, float* dH, float* dA,
                                float* dB, float* dX) {
  check_lora_shape("lora_backward", M, N, K, r);
  if (r == 0) return;
  if (use_fused(M, N, K, r)) {
    const size_t floats =
        cuda::lora_fused_backward_scratch_floats(M, N, K, r, dA != nullptr, dB != nullptr, dX != nullptr);
    // The Reduce slot: like every user of it, its contents do not outlive this op.
    float* partials = static_cast<float*>(scratch(Scratch::Reduce, floats * sizeof(float)));
    cuda::lora_fused_backward(M, N, K, r, s, X, A, B, H, dY, dH, dA, dB, dX, partials,
                              precision_ == GemmPrecision::Bf16);
    return;
  }
  if (dB) gemm_tn(N, r, M, s, dY, N, H, r, 1.0f, dB, r);
  if (!dA && !dX) return;
  gemm_nn(M, r, N, s, dY, N, B, r, 0.0f, dH, r);
  if (dA) gemm_tn(r, K, M, 1.0f, dH, r, X, K, 1.0f, dA, K);
  if (dX) gemm_nn(M, K, r, 1.0f, dH, r, A, K, 1.0f, dX, K);
}

}  // namespace ps
