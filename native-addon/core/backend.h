// The op contract of the engine: every op the model needs, declared once.
//
// Each backend (backend/cpu today, backend/cuda later) implements this whole
// list; the model code only ever calls through it, so it never knows where the
// numbers live. A parity test runs every op on every backend present.
//
// Conventions (they hold for every op below unless its comment says otherwise):
//  - fp32, row-major, dense. "rows" is the flattened token count (B*T).
//  - Pointers are backend memory (host memory for the CPU backend).
//  - Forward ops OVERWRITE their outputs.
//  - Backward ops ACCUMULATE (+=) into every gradient they are given, so the
//    residual stream and shared weights need no special casing. A gradient
//    pointer may be nullptr when that gradient is not needed (frozen weight).
//  - Results are deterministic for a given thread count: every reduction runs
//    in a fixed order (no atomics on floats).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "half_weight.h"
#include "quant/nf4_weight.h"

namespace ps {

// Shape of one attention call. Keys/values hold P "always visible" positions
// first (a prefix-tuning prefix or a KV cache), then the T positions that
// belong to the queries: S = P + T.
struct AttnShape {
  int B = 1;    // batch
  int T = 0;    // query positions per batch row
  int P = 0;    // leading key/value positions every real query sees
  int Hq = 1;   // query heads
  int Hkv = 1;  // key/value heads (Hq % Hkv == 0, grouped-query attention)
  int D = 0;    // head dim
  int S() const { return P + T; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;      // "cpu", "cuda"
  virtual std::string describe() const = 0;  // kernel choice, threads, device
  virtual int threads() const = 0;
  // True when backend memory IS host memory (the CPU backend): the host may
  // then read and write it directly, and host memory (a file mapping) may be
  // handed to ops as backend memory. False for a device backend: every
  // pointer given to an op must come from alloc(), and the host reaches that
  // memory only through upload() / download().
  virtual bool host_memory() const = 0;

  // ---- memory owned by the backend -------------------------------------
  virtual void* alloc(size_t bytes) = 0;  // 64-byte aligned; throws ps::Error on failure
  virtual void release(void* p) = 0;
  virtual void upload(void* dst, const void* host, size_t bytes) = 0;
  virtual void download(void* host, const void* src, size_t bytes) = 0;
  virtual void fill(float* x, float value, size_t n) = 0;
  virtual void copy(float* dst, const float* src, size_t n) = 0;

  // ---- GEMM, the three products of training -----------------------------
  // All: C = alpha * op(A) op(B) + beta * C, beta in {0, 1}; ld* are row strides.
  // nt: C[M,N] = A[M,K] · B[N,K]^T   (forward,       Y  = X · W^T)
  virtual void gemm_nt(int M, int N, int K, float alpha, const float* A, int lda,
                       const float* B, int ldb, float beta, float* C, int ldc) = 0;
  // nn: C[M,N] = A[M,K] · B[K,N]     (input grad,    dX = dY · W)
  virtual void gemm_nn(int M, int N, int K, float alpha, const float* A, int lda,
                       const float* B, int ldb, float beta, float* C, int ldc) = 0;
  // tn: C[M,N] = A[K,M]^T · B[K,N]   (weight grad,   dW = dY^T · X)
  virtual void gemm_tn(int M, int N, int K, float alpha, const float* A, int lda,
                       const float* B, int ldb, float beta, float* C, int ldc) = 0;

  // ---- low-rank (LoRA) branch, fused --------------------------------------
  // H[M,r] = X[M,K] · A[r,K]^T ;  Y[M,N] += s · H · B[N,r]^T   (H kept for backward)
  virtual void lora_forward(int M, int N, int K, int r, float s, const float* X,
                            const float* A, const float* B, float* H, float* Y) = 0;
  // dB += s · dY^T · H ;  dH = s · dY · B  (dH is scratch [M,r], overwritten);
  // dA += dH^T · X ;  dX += dH · A  (dX may be nullptr). Never forms B·A.
  virtual void lora_backward(int M, int N, int K, int r, float s, const float* X,
                             const float* A, const float* B, const float* H,
                             const float* dY, float* dH, float* dA, float* dB,
                             float* dX) = 0;

  // ---- DoRA (weight-decomposed LoRA, methods/dora.h) -----------------------
  // y[r, j] = beta * y[r, j] + x[r, j] * (f[j] + offset): a per-column factor
  // over [rows, N]; beta in {0, 1}; y may alias x.
  virtual void scale_columns(const float* x, const float* f, float offset, int rows, int N, float beta,
                             float* y) = 0;
  // out[j] += scale[j] * sum_r a[r, j] * b[r, j] (the magnitude's gradient),
  // in double, in the order column_dot_plan.h fixes (chunks of rows).
  // A device backend takes its chunk sums from its reduction scratch.
  virtual void column_dot(const float* a, const float* b, const float* scale, int rows, int N, float* out) = 0;
  // DoRA's weight norm from its parts, per row j of W + s B A (N rows, rank r):
  //   n_j^2 = w_sq[j] + 2 s sum_k B[j,k] PT[k,j] + s^2 sum_k B[j,k] BC[j,k]
  // with PT = A W^T [r, N] and BC = B (A A^T) [N, r], summed in double;
  // inv_norm[j] = 1 / n_j and factor[j] = m[j] / n_j.
  virtual void dora_norm(int N, int r, float s, const float* w_sq, const float* PT, const float* B,
                         const float* BC, const float* m, float* inv_norm, float* factor) = 0;

  // ---- elementwise --------------------------------------------------------
  virtual void add(float* y, const float* x, size_t n) = 0;              // y += x
  virtual void add_bias(float* y, const float* b, int rows, int N) = 0;  // y[r,:] += b
  virtual void bias_backward(const float* dy, int rows, int N, float* db) = 0;  // db += sum_r dy[r,:]
  // Inverted dropout with a counter-based RNG: element i is kept iff
  // uniform(key, i) >= p, so the mask is recomputed (not stored) in backward
  // and does not depend on the thread count. y = keep ? x / (1-p) : 0.
  virtual void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t key) = 0;
  virtual void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t key) = 0;  // dx += mask(dy)
  // NEFTune's noise (methods/neftune.h): x[i] += magnitude * v(key, i), with
  // v = (2 u24 + 1 - 2^24) / 2^24 from dropout's counter-based u24(key, i)
  // (dropout_mask.h): uniform on (-1, 1), symmetric, exact in fp32; a pure
  // function of (key, i), so any backend and thread count add the same bits.
  virtual void add_uniform_noise(float* x, size_t n, float magnitude, uint64_t key) = 0;

  // ---- embedding ----------------------------------------------------------
  virtual void embedding_forward(const int32_t* ids, int rows, const float* table, int D,
                                 float* out) = 0;
  virtual void embedding_backward(const int32_t* ids, int rows, const float* dout, int D,
                                  float* dtable) = 0;

  // ---- RMSNorm (Llama: y = x * rsqrt(mean(x^2) + eps) * w, all in fp32) ---
  // rstd[rows] is saved for backward. Also used per head for Qwen3's q/k norm
  // (rows = tokens * heads, D = head_dim).
  virtual void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int rows,
                               int D, float eps) = 0;
  virtual void rmsnorm_backward(const float* dy, const float* x, const float* w,
                                const float* rstd, int rows, int D, float* dx, float* dw) = 0;

  // ---- RoPE, Hugging Face "rotate_half" layout -----------------------------
  // x: [rows, H, D] in place; pos[rows]; cos/sin: [max_pos, D/2] tables.
  // out[i]       = x[i] cos - x[i+D/2] sin
  // out[i+D/2]   = x[i+D/2] cos + x[i] sin          (i < D/2)
  virtual void rope_forward(float* x, const int32_t* pos, int rows, int H, int D,
                            const float* cos, const float* sin) = 0;
  // dx in place: applies the transposed (inverse) rotation.
  virtual void rope_backward(float* dx, const int32_t* pos, int rows, int H, int D,
                             const float* cos, const float* sin) = 0;

  // ---- causal grouped-query attention --------------------------------------
  // q: [B,T,Hq,D]; k, v: [B,S,Hkv,D] (S = P + T); out: [B,T,Hq,D]; lse: [B,Hq,T].
  // seg: [B,T] segment ids. Query t of row b sees every prefix key (j < P) and
  // the real key P+j iff j <= t and seg[b,j] == seg[b,t]. seg < 0 marks
  // padding: such a query's output is 0 and it gets no gradient.
  // Softmax in fp32 with the running max; only lse is kept, and backward
  // recomputes the probabilities (no B*H*T*S matrix is stored).
  virtual void attention_forward(const AttnShape& s, const float* q, const float* k,
                                 const float* v, const int32_t* seg, float scale, float* out,
                                 float* lse) = 0;
  virtual void attention_backward(const AttnShape& s, const float* q, const float* k,
                                  const float* v, const int32_t* seg, float scale,
                                  const float* out, const float* lse, const float* dout,
                                  float* dq, float* dk, float* dv) = 0;

  // ---- SwiGLU MLP activation: out = silu(gate) * up -----------------------
  virtual void swiglu_forward(const float* gate, const float* up, float* out, size_t n) = 0;
  virtual void swiglu_backward(const float* gate, const float* up, const float* dout,
                               float* dgate, float* dup, size_t n) = 0;

  // ---- 16-bit tables (embedding / lm_head kept as stored under QLoRA) -------
  // dst[i] = src[i] widened exactly: bf16 ? bfloat16 : IEEE half. n may be small
  // (one embedding row): small calls run on the calling thread.
  virtual void half_to_float(const uint16_t* src, bool bf16, float* dst, size_t n) = 0;

  // ---- bf16 activations ------------------------------------------------------
  // True when the backend computes in bf16 (the CUDA backend's bf16
  // precision): the model then rounds the products it keeps for backward to
  // bf16 once, where they are made (gate, up, v and the attention output as
  // they come out; q and k after RoPE, and Qwen3's also before their norm;
  // a LoRA-adapted product after its branch is added), near what
  // torch.autocast's bf16 matmuls hand on, and keeps them in 16 bits where a
  // plan keeps them per layer (activations.h). False (the default): fp32.
  virtual bool bf16_activations() const { return false; }
  // x[i] = bf16(x[i]) in place, rounded to nearest even (quant/bf16_round.h);
  // bits[i] = its 16-bit pattern when bits is not nullptr, so half_to_float
  // (bf16) gives back exactly x[i].
  virtual void bf16_round(float* x, uint16_t* bits, size_t n) = 0;

  // ---- cross-entropy ------------------------------------------------------
  // logits [rows, V], targets [rows] (-100 = ignored). Returns the SUM of the
  // per-row losses (double) over non-ignored rows and sets *count. If dlogits
  // is not nullptr it is OVERWRITTEN with grad_scale * (softmax - onehot) for
  // counted rows and 0 for ignored rows; dlogits may alias logits.
  virtual double cross_entropy(const float* logits, const int32_t* targets, int rows, int V,
                               float grad_scale, float* dlogits, int* count) = 0;

  // ---- optimizers (torch semantics) ---------------------------------------
  // g is multiplied by grad_scale first (global-norm clipping).
  // AdamW: p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  //        p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
  virtual void adamw_step(float* p, const float* g, float* m, float* v, size_t n, float lr,
                          float beta1, float beta2, float eps, float weight_decay, int t,
                          float grad_scale) = 0;
  // SGD without momentum: g' = g + wd p; p -= lr g'
  virtual void sgd_step(float* p, const float* g, size_t n, float lr, float weight_decay,
                        float grad_scale) = 0;
  // sum of squares in double, fixed reduction order (for the global grad norm)
  virtual double sum_squares(const float* x, size_t n) = 0;

  // ---- 4-bit NF4 base weights (QLoRA) -------------------------------------
  // W is an Nf4Weight [N = rows, K = cols]; never dequantized whole: kernels
  // dequantize tiles into cache. Results equal dequantize-then-GEMM up to
  // fp32 summation order.
  virtual void nf4_dequantize(const Nf4Weight& W, float* w) = 0;  // w[numel]
  // nt: Y[M,N] = alpha * X[M,K] · W^T + beta * Y   (forward; M == 1: generation GEMV)
  virtual void nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta, float* Y, int ldy) = 0;
  // nn: dX[M,K] = alpha * dY[M,N] · W + beta * dX   (input gradient)
  virtual void nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha, float beta, float* dX, int lddx) = 0;

  // ---- 16-bit frozen base weights -------------------------------------------
  // W is a HalfWeight [N = rows, K = cols] of bfloat16 or IEEE half values as
  // the checkpoint stores them (LoRA / prompt / prefix tuning on a BF16 or
  // F16 model). Never widened whole: kernels widen tiles exactly while they
  // pack them. Results are BIT-IDENTICAL to gemm_nt / gemm_nn on the widened
  // fp32 weight (same blocking, same summation order), for any thread count.
  // nt: Y[M,N] = alpha * X[M,K] · W^T + beta * Y   (forward; M == 1: generation GEMV)
  virtual void half_gemm_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y, int ldy) = 0;
  // nn: dX[M,K] = alpha * dY[M,N] · W + beta * dX   (input gradient)
  virtual void half_gemm_nn(int M, const float* dY, int lddy, const HalfWeight& W, float alpha, float beta, float* dX, int lddx) = 0;

  // ---- few host round trips per step ----------------------------------------
  // On a device every value handed back to the host waits for the queue to
  // drain. These ops keep per-tensor, per-chunk and per-row work on the
  // backend, so a training step waits at most once for its loss and once for
  // its gradient norm, however many tensors and loss chunks it has.
  //
  // Sums of squares of `count` tensors at once: out[i] = sum_squares(xs[i],
  // ns[i]) bit for bit. xs and ns are HOST arrays describing backend memory
  // (like Nf4Weight); out is HOST memory: the one round trip of the call.
  virtual void sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) = 0;
  // cross_entropy without the host sum: loss[r] (backend memory, double) is
  // row r's loss, 0 for an ignored row; dlogits as in cross_entropy. Returns
  // nothing, so nothing waits: the caller downloads the losses once per step
  // and adds them in row order (cross_entropy's sum, bit for bit). A target
  // outside [0, V) other than -100 is a ps::Error (on a device backend at
  // its next synchronising call).
  virtual void cross_entropy_rows(const float* logits, const int32_t* targets, int rows, int V,
                                  float grad_scale, float* dlogits, double* loss) = 0;
  // tanh in place in fp32 (the prefix-tuning MLP): x = tanh(x).
  virtual void tanh_forward(float* x, size_t n) = 0;
  // tanh's backward from its output y, IN PLACE (not accumulated): on entry
  // dx is the gradient wrt tanh's output, on return wrt its input:
  // dx *= 1 - y * y.
  virtual void tanh_backward(const float* y, float* dx, size_t n) = 0;
  // Lookup in a 16-bit table kept as stored (QLoRA's embedding):
  // out[r, :] = table[ids[r], :] widened exactly (bf16 ? bfloat16 : IEEE
  // half). ids are backend memory; an id outside [0, table_rows) is a
  // ps::Error (on a device backend at its next synchronising call).
  virtual void embedding_forward_half(const int32_t* ids, int rows, const uint16_t* table, bool bf16,
                                      int table_rows, int D, float* out) = 0;
};

}  // namespace ps
