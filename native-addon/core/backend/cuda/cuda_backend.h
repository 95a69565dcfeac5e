// The CUDA backend: every op of backend.h on one NVIDIA GPU, fp32 in and out;
// the dense products in fp32 or with bf16 operands (GemmPrecision), through
// cuBLASLt when it loads or the own kernels (README.md). Backend memory is
// device memory (cudaMalloc); upload/download are the only ways the host
// reads or writes it. All work runs in order on the legacy default stream,
// so an op's results are visible to the next op and to download().
//
// Determinism: every reduction runs in a fixed order (no float atomics): the
// results depend only on the inputs and the GPU, not on scheduling.
//
// Errors: CUDA failures throw ps::Error naming the op and the CUDA error;
// an allocation that does not fit throws ps::OutOfMemory with the device's
// free/total memory. Bad indices inside device arrays (a negative token id
// or position) cannot be seen on the host without a sync, so kernels skip
// such rows and record the first one in a device status word; the next
// synchronising call (download, cross_entropy, sum_squares, synchronize)
// throws ps::Error naming the op, the row and the value.
//
// This header has no CUDA types, so plain C++ (tests, the engine) includes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backend.h"

namespace ps {

namespace cublaslt {
class Gemm;  // cublaslt/lt_gemm.h
struct RowMajorGemm;
}  // namespace cublaslt

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
};

// Number of usable CUDA devices; 0 when there is no driver, no device or the
// runtime cannot start (never throws). reason (optional) says why it is 0,
// and what to do (an old driver: which CUDA version to update it to).
int cuda_device_count(std::string* reason = nullptr);
// Throws ps::Error when the device does not exist.
CudaDeviceInfo cuda_device_info(int device);

class CudaBackend final : public Backend {
 public:
  // Throws ps::Error when the device is missing or unusable.
  explicit CudaBackend(int device = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  // The CPU-side simulator (sim/, tests only) says so in name() and describe().
#ifdef PS_CUDA_SIM
  std::string name() const override { return "cuda (simulated on the CPU)"; }
#else
  std::string name() const override { return "cuda"; }
#endif
  std::string describe() const override;
  int threads() const override { return 1; }
  bool host_memory() const override { return false; }
  const CudaDeviceInfo& device_info() const { return info_; }
  // Free/total memory now (cudaMemGetInfo).
  CudaDeviceInfo refreshed_info() const;
  // Waits for all queued work; throws on an asynchronous error or a bad
  // index recorded by a kernel (see the header comment).
  void synchronize();

  // ---- how the dense products run -----------------------------------------
  // Precision (gemm_precision.cu): fp32 (the default), or bf16 operands with
  // fp32 accumulation on tensor cores. Bf16 throws ps::Error on a GPU
  // without bf16 tensor cores (compute capability below 8.0).
  enum class GemmPrecision { Fp32, Bf16 };
  void set_gemm_precision(GemmPrecision p);
  GemmPrecision gemm_precision() const { return precision_; }
  // "fp32" or "bf16 operands, fp32 accumulation (<kernel>)", for describe().
  std::string precision_description() const;
  // "flash, bf16 on tensor cores" / "flash, fp32" / "reference kernels (fp32)": for describe().
  std::string attention_description() const;
  // Kernels (cublaslt/backend_gemm.cu): cuBLASLt, loaded at run time, when it
  // loads; else the own kernels (gemm.cu, gemm_bf16.cu). Settled by the
  // constructor: PEFT_STUDIO_GEMM=own|cublaslt forces one, and "cublaslt"
  // without the library throws there, saying what was tried and what to do.
  // "cuBLASLt 12.6.4 (/path/libcublasLt.so.12)", or "own tiled kernel (why)".
  std::string gemm_description() const;
  bool gemm_uses_cublaslt() const;
  // C[M,N] fp32 = alpha * op(A) op(B) + beta * C with A, B bf16 (raw bits),
  // fp32 accumulation, row-major like gemm_*: a_trans means A is stored
  // [K,M], b_trans means B is stored [N,K]. Only through cuBLASLt: throws
  // ps::Error when it is not in use (see gemm_description()).
  void gemm_bf16_cublaslt(bool a_trans, bool b_trans, int M, int N, int K, float alpha, const uint16_t* A,
                          int lda, const uint16_t* B, int ldb, float beta, float* C, int ldc);

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
  // bf16 precision keeps activations in bf16 too (backend.h).
  bool bf16_activations() const override { return precision_ == GemmPrecision::Bf16; }
  void bf16_round(float* x, uint16_t* bits, size_t n) override;

  double cross_entropy(const float* logits, const int32_t* targets, int rows, int V,
                       float grad_scale, float* dlogits, int* count) override;

  void adamw_step(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int t, float grad_scale) override;
  void sgd_step(float* p, const float* g, size_t n, float lr, float weight_decay,
                float grad_scale) override;
  double sum_squares(const float* x, size_t n) override;

  // The NF4 and 16-bit GEMMs widen their weight into the Nf4Weight scratch
  // slot a chunk of rows at a time, at most weight_chunk_values() values
  // (kWeightChunkValues unless a test lowers it to reach several chunks at
  // small sizes): a 14336 x 4096 weight would be 224 MiB widened whole.
  static constexpr size_t kWeightChunkValues = size_t(4) << 20;  // 16 MiB fp32
  size_t weight_chunk_values() const { return weight_chunk_values_; }
  void set_weight_chunk_values(size_t values);  // tests only (>= 1)

  // The Nf4Weight's pointers (codes, absmax or absmax_codes / absmax_map /
  // nested_absmax) must be device memory of this backend, like every other
  // op argument.
  void nf4_dequantize(const Nf4Weight& W, float* w) override;
  void nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta,
                   float* Y, int ldy) override;
  void nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha, float beta,
                   float* dX, int lddx) override;

  // 16-bit frozen weights (half_gemm.cu): W.data must be device memory of
  // this backend.
  void half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta,
                    float* Y, int ldy) override;
  void half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta,
                    float* dX, int lddx) override;

  // Few host round trips per step: batched_reductions.cu (one
  // download for all tensors), cross_entropy.cu (rows: no download), tanh.cu,
  // embedding_half.cu. Bad targets / ids go to the status word (cuda_common.cuh StatusCode).
  void sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) override;
  void cross_entropy_rows(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                          float* dlogits, double* loss) override;
  void tanh_forward(float* x, size_t n) override;
  void tanh_backward(const float* y, float* dx, size_t n) override;
  void embedding_forward_half(const int32_t* ids, int rows, const uint16_t* table, bool bf16, int table_rows,
                              int D, float* out) override;

 private:
  // A device buffer of at least `bytes`, kept and reused across calls (one
  // per slot; a slot's contents live until its next use).
  enum class Scratch { Nf4Weight, Attention, Loss, Reduce, Bf16OperandA, Bf16OperandB, kCount };
  void* scratch(Scratch slot, size_t bytes);
  // GEMMs against a stored weight (weight_gemm.cu): W [rows, cols] widened
  // by widen(row0, nrows, dst) a chunk of rows at a time into the Nf4Weight
  // slot; nt: out = alpha in W^T + beta out, nn: out = alpha in W + beta out.
  using WidenRows = std::function<void(int row0, int rows, float* dst)>;
  void weight_gemm(bool nt, int M, const float* in, int ld_in, int rows, int cols, float alpha, float beta,
                   float* out, int ld_out, const WidenRows& widen);
  int weight_chunk_rows(int rows, int cols) const;  // at least 1
  void check_status();  // throws on a bad index recorded by a kernel

  // bf16 products (gemm_precision.cu): gemm_nt/nn/tn come here in bf16 precision.
  void gemm_bf16(const char* op, bool a_trans, bool b_trans, int M, int N, int K, float alpha, const float* A,
                 int lda, const float* B, int ldb, float beta, float* C, int ldc);
  // src [rows, cols] (row stride ld) rounded into a bf16 copy in `slot` (row stride dst_ld).
  const uint16_t* rounded_to_bf16(Scratch slot, const float* src, int ld, int rows, int cols, int dst_ld);

  // cuBLASLt (cublaslt/backend_gemm.cu).
  struct LtState;
  LtState& lt_state() const;
  // The cuBLASLt handle, created by the constructor; nullptr when cuBLASLt is
  // not in use or cannot start (then the own kernels from there on, unless forced).
  cublaslt::Gemm* lt_gemm();
  // Runs g through cuBLASLt: false when it is not in use or has no algorithm
  // for g (the caller's own kernel then), unless forced (then it throws).
  bool lt_run(const char* op, const cublaslt::RowMajorGemm& g);
  // gemm.cu's hook (fp32) and gemm_bf16's (bf16 operands): true when cuBLASLt did the product.
  bool gemm_via_cublaslt(const char* op, bool a_trans, bool b_trans, int M, int N, int K, float alpha,
                         const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc);
  bool try_gemm_bf16_cublaslt(const char* op, bool a_trans, bool b_trans, int M, int N, int K, float alpha,
                              const uint16_t* A, int lda, const uint16_t* B, int ldb, float beta, float* C,
                              int ldc);

  CudaDeviceInfo info_;
  int* status_ = nullptr;  // device: [code, row, value, 0]
  void* scratch_[static_cast<int>(Scratch::kCount)] = {};
  size_t scratch_bytes_[static_cast<int>(Scratch::kCount)] = {};
  GemmPrecision precision_ = GemmPrecision::Fp32;
  size_t weight_chunk_values_ = kWeightChunkValues;
  mutable std::shared_ptr<LtState> lt_;  // settled by the constructor

  // ---- attention kernels (helper "flash": attention.cu, attention_flash.cu,
  // attention_reference.cu) -------------------------------------------------
 public:
  // Which kernels attention_forward/backward run: Flash (tiled, the default)
  // or Reference (a warp per query / key: the readable version tests compare
  // with). The constructor takes PEFT_STUDIO_ATTENTION=flash|reference from
  // the environment (unset: flash; anything else throws ps::Error).
  enum class AttentionKernels { Flash, Reference };
  void set_attention_kernels(AttentionKernels k) { attention_kernels_ = k; }
  AttentionKernels attention_kernels() const { return attention_kernels_; }
  // bf16 attention (attention_flash.cu, attention_flash_bf16*.cu): in bf16
  // precision, q, k, v, dout, P and dS rounded to bf16 and the products on
  // tensor cores (D <= 128), as PyTorch's bf16 flash attention (what
  // torch.autocast(bfloat16) + SDPA does). On by default in bf16 precision;
  // set_attention_bf16(false) or PEFT_STUDIO_ATTENTION_BF16=0 (read by the
  // constructor) keeps attention fp32 there.
  void set_attention_bf16(bool on) { attention_bf16_ = on; }
  bool attention_bf16() const { return attention_bf16_; }

 private:
  static AttentionKernels attention_kernels_from_env();
  // Called after attention.cu's argument checks (D <= 256, pointers given).
  void attention_forward_flash(const AttnShape& s, const float* q, const float* k, const float* v,
                               const int32_t* seg, float scale, float* out, float* lse);
  void attention_backward_flash(const AttnShape& s, const float* q, const float* k, const float* v,
                                const int32_t* seg, float scale, const float* out, const float* lse,
                                const float* dout, float* dq, float* dk, float* dv);
  void attention_forward_reference(const AttnShape& s, const float* q, const float* k, const float* v,
                                   const int32_t* seg, float scale, float* out, float* lse);
  void attention_backward_reference(const AttnShape& s, const float* q, const float* k, const float* v,
                                    const int32_t* seg, float scale, const float* out, const float* lse,
                                    const float* dout, float* dq, float* dk, float* dv);
  static bool attention_bf16_from_env();
  // The flash kernels' precision: bf16 iff set_attention_bf16 and GemmPrecision::Bf16.
  bool attention_rounds_bf16() const { return attention_bf16_ && precision_ == GemmPrecision::Bf16; }
  AttentionKernels attention_kernels_ = attention_kernels_from_env();
  bool attention_bf16_ = attention_bf16_from_env();

  // ---- weight GEMMs without widening (helper "gemv": weight_gemv.cu,
  // weight_gemm.cu, nf4.cu, half_gemm.cu, gemm_precision.cu) ---------------
 public:
  // Tests and timings only: false runs the weight GEMMs as before these
  // paths existed. gemv: nf4/half_gemm_nt with 1..8 rows through the fused
  // GEMV (weight_gemv.h); bf16_direct: under bf16 precision a BF16 weight is
  // the bf16 GEMM's operand where it lies and F16/NF4 chunks are converted
  // into bf16 scratch, instead of widened to fp32 chunks that the GEMM rounds.
  void set_weight_gemm_paths(bool gemv, bool bf16_direct) {
    gemv_enabled_ = gemv;
    bf16_direct_ = bf16_direct;
  }

 private:
  // weight_gemm under bf16 precision with a bf16 weight: `direct` (a BF16
  // weight, read in place) or, when null, to_bf16(row0, nrows, dst, ld)
  // filling the Nf4Weight slot a chunk of rows at a time (the chunks of
  // weight_gemm, so nn sums in the same order). Bit-identical to weight_gemm
  // on the widened weight with the own kernels.
  using WidenRowsBf16 = std::function<void(int row0, int rows, uint16_t* dst, int ld)>;
  void weight_gemm_bf16(bool nt, int M, const float* in, int ld_in, int rows, int cols, float alpha, float beta,
                        float* out, int ld_out, const uint16_t* direct, const WidenRowsBf16& to_bf16);
  // src [rows, cols] rounded into a bf16 copy in `slot` for cuBLASLt (row
  // stride dst_ld, 16-byte rows); nullptr when cuBLASLt is not in use or the
  // copy would pass the copy bound (then the own kernel rounds on the fly).
  const uint16_t* bf16_copy_for_cublaslt(Scratch slot, const float* src, int ld, int rows, int cols, int& dst_ld);
  bool gemv_enabled_ = true, bf16_direct_ = true;
};

}  // namespace ps
