// The CPU backend with bf16 GEMM operands: every dense product rounds both
// operands to bfloat16 (nearest even, quant/bf16_round.h) and then runs the
// CPU's fp32 GEMM, the semantics of the CUDA backend's bf16 precision
// (backend/cuda/gemm_precision.cu). LoRA, the NF4 and the 16-bit weight
// GEMMs are spelled as the CUDA backend spells them (lora.cu, nf4.cu,
// half_gemm.cu: dequantize or widen, then the GEMMs), so each of their
// products is rounded the same way; the activations the model keeps are
// rounded to bf16 as on the GPU (bf16_activations). A CUDA run in bf16 must then equal this
// backend's run up to fp32 summation order: the same tolerance as fp32.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "quant/bf16_round.h"

namespace bf16ref {

class Bf16GemmCpuBackend : public ps::CpuBackend {
 public:
  explicit Bf16GemmCpuBackend(int threads) : ps::CpuBackend(threads) {}
  std::string name() const override { return "cpu (bf16 GEMM operands)"; }
  // bf16 precision keeps the products backward reads in bf16 (backend.h): the
  // model rounds them through bf16_round, the CPU's op, on both sides.
  bool bf16_activations() const override { return true; }

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

  // ---- attention (helper "flash"): with round_attention, the CUDA flash
  // kernels' bf16 attention (CudaBackend::set_attention_bf16; the list of
  // rounded values is in backend/cuda/attention_flash.cu), spelled as plain
  // loops; without it (the default, as the CUDA backend's) the CPU's fp32
  // attention. Rounded to
  // bf16: q, k, v and dout where they enter a product; P before P.V (forward)
  // and P^T.dO (backward); dS before dS.K and dS^T.Q. P is exp2(s log2e - M)
  // with M the integer ceil of the row's max, so its rounding does not depend
  // on the order keys are visited in; l sums the unrounded P; lse = ln2 (M +
  // log2 l). Backward: P = exp(s - lse) from the given lse, delta =
  // sum(bf16(dout) * out), dS = P (dP - delta). Everything else fp32, each sum
  // in key (or dim) order; dK, dV summed over a group's query heads in order.
  bool round_attention = false;
  void attention_forward(const ps::AttnShape& s, const float* q, const float* k, const float* v, const int32_t* seg,
                         float scale, float* out, float* lse) override {
    if (!round_attention) return ps::CpuBackend::attention_forward(s, q, k, v, seg, scale, out, lse);
    const int S = s.S(), D = s.D, rep = s.Hq / s.Hkv;
    const float log2e = 1.4426950408889634f, ln2 = 0.6931471805599453f;
    std::vector<float> x(static_cast<size_t>(S)), acc(static_cast<size_t>(D));
    for (int b = 0; b < s.B; ++b)
      for (int t = 0; t < s.T; ++t)
        for (int h = 0; h < s.Hq; ++h) {
          const size_t qo = ((static_cast<size_t>(b) * s.T + t) * s.Hq + h) * D;
          float* o = out + qo;
          float& row_lse = lse[(static_cast<size_t>(b) * s.Hq + h) * s.T + t];
          if (seg[static_cast<size_t>(b) * s.T + t] < 0) {
            for (int d = 0; d < D; ++d) o[d] = 0.0f;
            row_lse = 0.0f;
            continue;
          }
          float m = -INFINITY;
          for (int js = 0; js < S; ++js) {
            if (!attn_visible(s, seg, b, t, js)) continue;
            const float* kr = k + ((static_cast<size_t>(b) * S + js) * s.Hkv + h / rep) * D;
            float dot = 0.0f;
            for (int d = 0; d < D; ++d) dot += ps::round_to_bf16(q[qo + d]) * ps::round_to_bf16(kr[d]);
            x[js] = dot * scale * log2e;
            m = std::max(m, x[js]);
          }
          m = std::ceil(m);
          float l = 0.0f;
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int js = 0; js < S; ++js) {
            if (!attn_visible(s, seg, b, t, js)) continue;
            const float* vr = v + ((static_cast<size_t>(b) * S + js) * s.Hkv + h / rep) * D;
            const float p = std::exp2(x[js] - m), pr = ps::round_to_bf16(p);
            l += p;
            for (int d = 0; d < D; ++d) acc[d] += pr * ps::round_to_bf16(vr[d]);
          }
          const float inv = 1.0f / l;
          for (int d = 0; d < D; ++d) o[d] = acc[d] * inv;
          row_lse = (m + std::log2(l)) * ln2;
        }
  }
  void attention_backward(const ps::AttnShape& s, const float* q, const float* k, const float* v, const int32_t* seg,
                          float scale, const float* out, const float* lse, const float* dout, float* dq, float* dk,
                          float* dv) override {
    if (!round_attention)
      return ps::CpuBackend::attention_backward(s, q, k, v, seg, scale, out, lse, dout, dq, dk, dv);
    const int S = s.S(), D = s.D, rep = s.Hq / s.Hkv;
    const size_t nk = static_cast<size_t>(s.B) * S * s.Hkv * D;
    std::vector<float> dk_acc(nk, 0.0f), dv_acc(nk, 0.0f), dq_acc(static_cast<size_t>(D));
    auto rb = [](float f) { return ps::round_to_bf16(f); };
    for (int b = 0; b < s.B; ++b)
      for (int h = 0; h < s.Hq; ++h)
        for (int t = 0; t < s.T; ++t) {
          if (seg[static_cast<size_t>(b) * s.T + t] < 0) continue;
          const size_t qo = ((static_cast<size_t>(b) * s.T + t) * s.Hq + h) * D;
          const float row_lse = lse[(static_cast<size_t>(b) * s.Hq + h) * s.T + t];
          float delta = 0.0f;
          for (int d = 0; d < D; ++d) delta += rb(dout[qo + d]) * out[qo + d];
          std::fill(dq_acc.begin(), dq_acc.end(), 0.0f);
          for (int js = 0; js < S; ++js) {
            if (!attn_visible(s, seg, b, t, js)) continue;
            const size_t ko = ((static_cast<size_t>(b) * S + js) * s.Hkv + h / rep) * D;
            float sp = 0.0f, dp = 0.0f;
            for (int d = 0; d < D; ++d) {
              sp += rb(q[qo + d]) * rb(k[ko + d]);
              dp += rb(dout[qo + d]) * rb(v[ko + d]);
            }
            const float p = std::exp(sp * scale - row_lse);
            const float ds = rb(p * (dp - delta)), pr = rb(p);
            for (int d = 0; d < D; ++d) {
              dq_acc[d] += ds * rb(k[ko + d]);
              dk_acc[ko + d] += ds * rb(q[qo + d]);
              dv_acc[ko + d] += pr * rb(dout[qo + d]);
            }
          }
          if (dq)
            for (int d = 0; d < D; ++d) dq[qo + d] += scale * dq_acc[d];
        }
    // Only keys some query sees get a gradient (the others' sums are 0 and are left alone).
    for (int b = 0; b < s.B; ++b)
      for (int js = 0; js < S; ++js) {
        if (js >= s.P && seg[static_cast<size_t>(b) * s.T + (js - s.P)] < 0) continue;
        for (int g = 0; g < s.Hkv; ++g) {
          const size_t ko = ((static_cast<size_t>(b) * S + js) * s.Hkv + g) * D;
          for (int d = 0; d < D; ++d) {
            if (dk) dk[ko + d] += scale * dk_acc[ko + d];
            if (dv) dv[ko + d] += dv_acc[ko + d];
          }
        }
      }
  }

 private:
  // Attention visibility (backend.h AttnShape): prefix keys, causal within the segment, padding sees nothing.
  static bool attn_visible(const ps::AttnShape& s, const int32_t* seg, int b, int t, int js) {
    const int32_t st = seg[static_cast<size_t>(b) * s.T + t];
    if (st < 0) return false;
    if (js < s.P) return true;
    const int j = js - s.P;
    return j <= t && seg[static_cast<size_t>(b) * s.T + j] == st;
  }
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
