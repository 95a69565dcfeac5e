// The CPU backend with bf16 GEMM operands: every dense product rounds both
// operands to bfloat16 (nearest even, quant/bf16_round.h) and then runs the
// CPU's fp32 GEMM, the semantics of the CUDA backend's bf16 precision
// (backend/cuda/gemm_precision.cu). LoRA, the NF4 and the 16-bit weight
// GEMMs are spelled as the CUDA backend spells them (lora.cu, nf4.cu,
// half_gemm.cu: dequantize or widen, then the GEMMs), so each of their
// products is rounded the same way. A CUDA run in bf16 must then equal this
// backend's run up to fp32 summation order: the same tolerance as fp32.
#pragma once

#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "quant/bf16_round.h"

namespace bf16ref {

class Bf16GemmCpuBackend : public ps::CpuBackend {
 public:
  explicit Bf16GemmCpuBackend(int threads) : ps::CpuBackend(threads) {}
  std::string name() const override { return "cpu (bf16 GEMM operands)"; }

  void gemm_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) override {
    const auto a = rounded(A, M, K, lda), b = rounded(B, N, K, ldb);
    ps::CpuBackend::gemm_nt(M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, C, ldc);
  }
  void gemm_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) override {
    const auto a = rounded(A, M, K, lda), b = rounded(B, K, N, ldb);
    ps::CpuBackend::gemm_nn(M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, C, ldc);
  }
  void gemm_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) override {
    const auto a = rounded(A, K, M, lda), b = rounded(B, K, N, ldb);
    ps::CpuBackend::gemm_tn(M, N, K, alpha, a.data(), lda, b.data(), ldb, beta, C, ldc);
  }

  // lora.cu's four products.
  void lora_forward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B, float* H,
                    float* Y) override {
    if (r == 0) return;
    gemm_nt(M, r, K, 1.0f, X, K, A, K, 0.0f, H, r);
    gemm_nt(M, N, r, s, H, r, B, r, 1.0f, Y, N);
  }
  void lora_backward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B,
                     const float* H, const float* dY, float* dH, float* dA, float* dB, float* dX) override {
    if (r == 0) return;
    if (dB) gemm_tn(N, r, M, s, dY, N, H, r, 1.0f, dB, r);
    if (!dA && !dX) return;
    gemm_nn(M, r, N, s, dY, N, B, r, 0.0f, dH, r);
    if (dA) gemm_tn(r, K, M, 1.0f, dH, r, X, K, 1.0f, dA, K);
    if (dX) gemm_nn(M, K, r, 1.0f, dH, r, A, K, 1.0f, dX, K);
  }

  // nf4.cu / half_gemm.cu: the whole weight in fp32, then the GEMM.
  void nf4_gemm_nt(int M, const float* X, int ldx, const ps::Nf4Weight& W, float alpha, float beta, float* Y,
                   int ldy) override {
    const std::vector<float> w = dequantized(W);
    gemm_nt(M, static_cast<int>(W.rows), static_cast<int>(W.cols), alpha, X, ldx, w.data(), static_cast<int>(W.cols),
            beta, Y, ldy);
  }
  void nf4_gemm_nn(int M, const float* dY, int lddy, const ps::Nf4Weight& W, float alpha, float beta, float* dX,
                   int lddx) override {
    const std::vector<float> w = dequantized(W);
    gemm_nn(M, static_cast<int>(W.cols), static_cast<int>(W.rows), alpha, dY, lddy, w.data(),
            static_cast<int>(W.cols), beta, dX, lddx);
  }
  void half_gemm_nt(int M, const float* X, int ldx, const ps::HalfWeight& W, float alpha, float beta, float* Y,
                    int ldy) override {
    const std::vector<float> w = widened(W);
    gemm_nt(M, W.rows, W.cols, alpha, X, ldx, w.data(), W.cols, beta, Y, ldy);
  }
  void half_gemm_nn(int M, const float* dY, int lddy, const ps::HalfWeight& W, float alpha, float beta, float* dX,
                    int lddx) override {
    const std::vector<float> w = widened(W);
    gemm_nn(M, W.cols, W.rows, alpha, dY, lddy, w.data(), W.cols, beta, dX, lddx);
  }

 private:
  // The rows x cols block of a row-major matrix with row stride ld, rounded
  // to bf16 (the padding between rows is copied as it is: never read).
  static std::vector<float> rounded(const float* p, int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0 || !p) return std::vector<float>(1, 0.0f);
    std::vector<float> out(p, p + static_cast<size_t>(rows - 1) * ld + cols);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        float& v = out[static_cast<size_t>(r) * ld + c];
        v = ps::round_to_bf16(v);
      }
    return out;
  }
  std::vector<float> dequantized(const ps::Nf4Weight& W) {
    std::vector<float> w(static_cast<size_t>(W.numel()));
    nf4_dequantize(W, w.data());
    return w;
  }
  std::vector<float> widened(const ps::HalfWeight& W) {
    std::vector<float> w(static_cast<size_t>(W.numel()));
    half_to_float(W.data, W.bf16, w.data(), w.size());
    return w;
  }
};

}  // namespace bf16ref
