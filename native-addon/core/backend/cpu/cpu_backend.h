// The CPU backend: host memory, a thread pool, and AVX2/FMA kernels chosen at
// run time with a portable fallback. The op implementations are split by
// concern across this folder (gemm, lora, norm, rope, attention, ...); this
// header only gathers them into the Backend interface.
#pragma once

#include <memory>

#include "backend.h"
#include "threadpool.h"

namespace ps {

struct AttnBuffers;  // attention_buffers.h

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
};
CpuFeatures detect_cpu_features();

class CpuBackend : public Backend {  // not final: tests/bf16_reference_backend.h derives from it
 public:
  // threads <= 0: one per hardware thread. force_portable: skip AVX2 kernels
  // (tests use it to compare both paths).
  explicit CpuBackend(int threads = 0, bool force_portable = false);
  ~CpuBackend() override;

  std::string name() const override { return "cpu"; }
  std::string describe() const override;
  int threads() const override { return pool_->size(); }
  bool host_memory() const override { return true; }
  ThreadPool& pool() { return *pool_; }
  bool use_avx2() const { return use_avx2_; }
  // Attention block kernels: the AVX-512 set where the CPU has it (on by
  // default; tests turn it off to run the AVX2 set on the same machine).
  bool use_avx512_attention() const { return use_avx512_attention_; }
  void set_avx512_attention(bool on);

  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void upload(void* dst, const void* host, size_t bytes) override;
  void download(void* host, const void* src, size_t bytes) override;
  void fill(float* x, float value, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;

  void gemm_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) override;
  void gemm_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) override;
  void gemm_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
               float beta, float* C, int ldc) override;

  void lora_forward(int M, int N, int K, int r, float s, const float* X, const float* A,
                    const float* B, float* H, float* Y) override;
  void lora_backward(int M, int N, int K, int r, float s, const float* X, const float* A,
                     const float* B, const float* H, const float* dY, float* dH, float* dA,
                     float* dB, float* dX) override;

  void scale_columns(const float* x, const float* f, float offset, int rows, int N, float beta,
                     float* y) override;
  void column_dot(const float* a, const float* b, const float* scale, int rows, int N, float* out) override;
  void dora_norm(int N, int r, float s, const float* w_sq, const float* PT, const float* B, const float* BC,
                 const float* m, float* inv_norm, float* factor) override;
  void add_uniform_noise(float* x, size_t n, float magnitude, uint64_t key) override;
  void add(float* y, const float* x, size_t n) override;
  void add_bias(float* y, const float* b, int rows, int N) override;
  void bias_backward(const float* dy, int rows, int N, float* db) override;
  void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t key) override;
  void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t key) override;

  void embedding_forward(const int32_t* ids, int rows, const float* table, int D,
                         float* out) override;
  void embedding_backward(const int32_t* ids, int rows, const float* dout, int D,
                          float* dtable) override;

  void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int rows, int D,
                       float eps) override;
  void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd,
                        int rows, int D, float* dx, float* dw) override;

  void rope_forward(float* x, const int32_t* pos, int rows, int H, int D, const float* cos,
                    const float* sin) override;
  void rope_backward(float* dx, const int32_t* pos, int rows, int H, int D, const float* cos,
                     const float* sin) override;

  void attention_forward(const AttnShape& s, const float* q, const float* k, const float* v,
                         const int32_t* seg, float scale, float* out, float* lse) override;
  void attention_backward(const AttnShape& s, const float* q, const float* k, const float* v,
                          const int32_t* seg, float scale, const float* out, const float* lse,
                          const float* dout, float* dq, float* dk, float* dv) override;

  void swiglu_forward(const float* gate, const float* up, float* out, size_t n) override;
  void swiglu_backward(const float* gate, const float* up, const float* dout, float* dgate,
                       float* dup, size_t n) override;

  void half_to_float(const uint16_t* src, bool bf16, float* dst, size_t n) override;
  void bf16_round(float* x, uint16_t* bits, size_t n) override;

  double cross_entropy(const float* logits, const int32_t* targets, int rows, int V,
                       float grad_scale, float* dlogits, int* count) override;

  void adamw_step(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t, float grad_scale) override;
  void sgd_step(float* p, const float* g, size_t n, float lr, float weight_decay,
                float grad_scale) override;
  double sum_squares(const float* x, size_t n) override;

  void nf4_dequantize(const Nf4Weight& W, float* w) override;
  void nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta,
                   float* Y, int ldy) override;
  void nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha, float beta,
                   float* dX, int lddx) override;

  // 16-bit frozen weights (half_gemm.cpp)
  void half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta,
                    float* Y, int ldy) override;
  void half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                    float* dX, int lddx) override;

  // Few host round trips per step: batched_reductions.cpp,
  // cross_entropy_rows.cpp, tanh.cpp, embedding_half.cpp
  void sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) override;
  void cross_entropy_rows(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                          float* dlogits, double* loss) override;
  void tanh_forward(float* x, size_t n) override;
  void tanh_backward(const float* y, float* dx, size_t n) override;
  void embedding_forward_half(const int32_t* ids, int rows, const uint16_t* table, bool bf16, int table_rows,
                              int D, float* out) override;

 private:
  // The attention's buffers (attention_buffers.h), made on first use.
  AttnBuffers& attn_buffers();
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<AttnBuffers> attn_buffers_;
  bool use_avx2_ = false;
  bool use_avx512_attention_ = false;
};

}  // namespace ps
