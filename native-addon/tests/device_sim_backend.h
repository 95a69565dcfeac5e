// A backend whose memory the host may NOT touch, for testing the engine's
// device plumbing on a machine without a GPU. It computes with a CpuBackend
// (so results can be compared bit for bit with the plain CPU engine) but
// behaves like a GPU towards the code that calls it:
//  - host_memory() is false;
//  - alloc() hands out memory from one reserved region that is mapped
//    PROT_NONE except while one of this backend's own calls runs, so any read
//    or write of backend memory by engine or model code outside the backend
//    is a SIGSEGV, which the handler below turns into a message naming the
//    offending address and a failed test;
//  - every pointer given to an op must lie in that region (host memory, e.g.
//    a file mapping or a std::vector, handed over as if it were backend
//    memory, throws), and upload/download must go host <-> region.
// One instance at a time (the region and the signal handler are global).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>

#include "backend.h"
#include "backend/cpu/cpu_backend.h"
#include "error.h"

namespace devsim {

struct Region {
  uint8_t* base = nullptr;
  size_t reserved = 0;
  size_t used = 0;  // bump pointer (freed blocks are not reused: test models are tiny)
  size_t allocations = 0;
};

inline Region& region() {
  static Region r;
  return r;
}

// Calls of the 16-bit GEMMs over the process (never reset), so a test can
// tell that a run really computed with 16-bit weights in device memory.
inline size_t& half_gemm_calls() {
  static size_t n = 0;
  return n;
}

inline void on_segv(int sig, siginfo_t* info, void*) {
  const Region& r = region();
  const uint8_t* a = static_cast<const uint8_t*>(info->si_addr);
  char msg[256];
  int n;
  if (r.base && a >= r.base && a < r.base + r.reserved)
    n = std::snprintf(msg, sizeof msg,
                      "FAIL: host code touched backend (device) memory outside a backend call: "
                      "address %p, region offset %zu\n",
                      static_cast<const void*>(a), static_cast<size_t>(a - r.base));
  else
    n = std::snprintf(msg, sizeof msg, "FAIL: segmentation fault at %p (not backend memory)\n",
                      static_cast<const void*>(a));
  if (n > 0) (void)!write(2, msg, static_cast<size_t>(n));
  _exit(3);
}

class DeviceSimBackend final : public ps::Backend {
 public:
  // bf16_activations: report the CUDA backend's bf16 storage (Backend::bf16_activations), so the
  // engine keeps its 16-bit activation copies here too (the GEMMs stay the CPU's fp32 ones).
  explicit DeviceSimBackend(int threads, size_t reserve_bytes = size_t(1) << 31, bool bf16_activations = false)
      : cpu_(threads), bf16_activations_(bf16_activations) {
    Region& r = region();
    if (r.base) throw std::logic_error("DeviceSimBackend: one instance at a time");
    void* p = mmap(nullptr, reserve_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("DeviceSimBackend: cannot reserve the region");
    r = Region();
    r.base = static_cast<uint8_t*>(p);
    r.reserved = reserve_bytes;
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old_segv_);
  }
  ~DeviceSimBackend() override {
    Region& r = region();
    munmap(r.base, r.reserved);
    r = Region();
    sigaction(SIGSEGV, &old_segv_, nullptr);
  }

  std::string name() const override { return "devsim"; }
  std::string describe() const override { return "simulated device over " + cpu_.describe(); }
  int threads() const override { return cpu_.threads(); }
  bool host_memory() const override { return false; }

  size_t allocations() const { return region().allocations; }

  // Host round trips, counted for tests/test_sync_counts.cpp: on a GPU each
  // download and each op that hands a value back to the host (a double, a
  // host array) waits for the device's queue to drain. Uploads are counted
  // apart (they do not return data, but a pageable upload also waits).
  struct RoundTrips {
    size_t downloads = 0;
    size_t host_results = 0;  // cross_entropy, sum_squares, sum_squares_many
    size_t uploads = 0;
    size_t total() const { return downloads + host_results; }
  };
  const RoundTrips& round_trips() const { return trips_; }

  // ---- memory ---------------------------------------------------------------
  void* alloc(size_t bytes) override {
    Region& r = region();
    const size_t at = (r.used + 63) & ~size_t(63);
    const size_t size = ((bytes ? bytes : 1) + 63) & ~size_t(63);
    if (at + size + 64 > r.reserved) throw ps::OutOfMemory("the simulated device", bytes);
    r.used = at + size + 64;  // a 64-byte gap keeps one block's overrun out of the next
    ++r.allocations;
    return r.base + at;
  }
  // The bump region never reuses blocks (the test models are tiny).
  void release(void* p) override {
    if (p) require(p, "release");
  }
  void upload(void* dst, const void* host, size_t bytes) override {
    require(dst, "upload (destination)");
    require_host(host, "upload (source)");
    Open o(this);
    ++trips_.uploads;
    cpu_.upload(dst, host, bytes);
  }
  void download(void* host, const void* src, size_t bytes) override {
    require(src, "download (source)");
    require_host(host, "download (destination)");
    Open o(this);
    ++trips_.downloads;
    cpu_.download(host, src, bytes);
  }
  void fill(float* x, float value, size_t n) override {
    require(x, "fill");
    Open o(this);
    cpu_.fill(x, value, n);
  }
  void copy(float* dst, const float* src, size_t n) override {
    require(dst, "copy");
    require(src, "copy");
    Open o(this);
    cpu_.copy(dst, src, n);
  }

  // ---- ops: check every pointer, open the region, delegate -----------------
  void gemm_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) override {
    all("gemm_nt", {A, B, C});
    Open o(this);
    cpu_.gemm_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void gemm_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) override {
    all("gemm_nn", {A, B, C});
    Open o(this);
    cpu_.gemm_nn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void gemm_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) override {
    all("gemm_tn", {A, B, C});
    Open o(this);
    cpu_.gemm_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void lora_forward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B, float* H,
                    float* Y) override {
    all("lora_forward", {X, A, B, H, Y});
    Open o(this);
    cpu_.lora_forward(M, N, K, r, s, X, A, B, H, Y);
  }
  void lora_backward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B,
                     const float* H, const float* dY, float* dH, float* dA, float* dB, float* dX) override {
    all("lora_backward", {X, A, B, H, dY, dH, dA, dB});
    optional("lora_backward", dX);
    Open o(this);
    cpu_.lora_backward(M, N, K, r, s, X, A, B, H, dY, dH, dA, dB, dX);
  }
  void scale_columns(const float* x, const float* f, float offset, int rows, int N, float beta,
                     float* y) override {
    all("scale_columns", {x, f, y});
    Open o(this);
    cpu_.scale_columns(x, f, offset, rows, N, beta, y);
  }
  void column_dot(const float* a, const float* b, const float* scale, int rows, int N, float* out) override {
    all("column_dot", {a, b, scale, out});
    Open o(this);
    cpu_.column_dot(a, b, scale, rows, N, out);
  }
  void dora_norm(int N, int r, float s, const float* w_sq, const float* PT, const float* B, const float* BC,
                 const float* m, float* inv_norm, float* factor) override {
    all("dora_norm", {w_sq, PT, B, BC, m, inv_norm, factor});
    Open o(this);
    cpu_.dora_norm(N, r, s, w_sq, PT, B, BC, m, inv_norm, factor);
  }
  void add_uniform_noise(float* x, size_t n, float magnitude, uint64_t key) override {
    all("add_uniform_noise", {x});
    Open o(this);
    cpu_.add_uniform_noise(x, n, magnitude, key);
  }
  void add(float* y, const float* x, size_t n) override {
    all("add", {y, x});
    Open o(this);
    cpu_.add(y, x, n);
  }
  void add_bias(float* y, const float* b, int rows, int N) override {
    all("add_bias", {y, b});
    Open o(this);
    cpu_.add_bias(y, b, rows, N);
  }
  void bias_backward(const float* dy, int rows, int N, float* db) override {
    all("bias_backward", {dy, db});
    Open o(this);
    cpu_.bias_backward(dy, rows, N, db);
  }
  void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t key) override {
    all("dropout_forward", {x, y});
    Open o(this);
    cpu_.dropout_forward(x, y, n, p, key);
  }
  void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t key) override {
    all("dropout_backward", {dy, dx});
    Open o(this);
    cpu_.dropout_backward(dy, dx, n, p, key);
  }
  void embedding_forward(const int32_t* ids, int rows, const float* table, int D, float* out) override {
    all("embedding_forward", {ids, table, out});
    Open o(this);
    cpu_.embedding_forward(ids, rows, table, D, out);
  }
  void embedding_backward(const int32_t* ids, int rows, const float* dout, int D, float* dtable) override {
    all("embedding_backward", {ids, dout, dtable});
    Open o(this);
    cpu_.embedding_backward(ids, rows, dout, D, dtable);
  }
  void rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int rows, int D, float eps) override {
    all("rmsnorm_forward", {x, w, y, rstd});
    Open o(this);
    cpu_.rmsnorm_forward(x, w, y, rstd, rows, D, eps);
  }
  void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, int rows, int D,
                        float* dx, float* dw) override {
    all("rmsnorm_backward", {dy, x, w, rstd});
    optional("rmsnorm_backward", dx);
    optional("rmsnorm_backward", dw);
    Open o(this);
    cpu_.rmsnorm_backward(dy, x, w, rstd, rows, D, dx, dw);
  }
  void rope_forward(float* x, const int32_t* pos, int rows, int H, int D, const float* cos,
                    const float* sin) override {
    all("rope_forward", {x, pos, cos, sin});
    Open o(this);
    cpu_.rope_forward(x, pos, rows, H, D, cos, sin);
  }
  void rope_backward(float* dx, const int32_t* pos, int rows, int H, int D, const float* cos,
                     const float* sin) override {
    all("rope_backward", {dx, pos, cos, sin});
    Open o(this);
    cpu_.rope_backward(dx, pos, rows, H, D, cos, sin);
  }
  void attention_forward(const ps::AttnShape& s, const float* q, const float* k, const float* v,
                         const int32_t* seg, float scale, float* out, float* lse) override {
    all("attention_forward", {q, k, v, seg, out, lse});
    Open o(this);
    cpu_.attention_forward(s, q, k, v, seg, scale, out, lse);
  }
  void attention_backward(const ps::AttnShape& s, const float* q, const float* k, const float* v,
                          const int32_t* seg, float scale, const float* out, const float* lse, const float* dout,
                          float* dq, float* dk, float* dv) override {
    all("attention_backward", {q, k, v, seg, out, lse, dout, dq, dk, dv});
    Open o(this);
    cpu_.attention_backward(s, q, k, v, seg, scale, out, lse, dout, dq, dk, dv);
  }
  void swiglu_forward(const float* gate, const float* up, float* out, size_t n) override {
    all("swiglu_forward", {gate, up, out});
    Open o(this);
    cpu_.swiglu_forward(gate, up, out, n);
  }
  void swiglu_backward(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                       size_t n) override {
    all("swiglu_backward", {gate, up, dout, dgate, dup});
    Open o(this);
    cpu_.swiglu_backward(gate, up, dout, dgate, dup, n);
  }
  void half_to_float(const uint16_t* src, bool bf16, float* dst, size_t n) override {
    all("half_to_float", {src, dst});
    Open o(this);
    cpu_.half_to_float(src, bf16, dst, n);
  }
  bool bf16_activations() const override { return bf16_activations_; }
  void bf16_round(float* x, uint16_t* bits, size_t n) override {
    require(x, "bf16_round");
    optional("bf16_round", bits);
    Open o(this);
    cpu_.bf16_round(x, bits, n);
  }
  double cross_entropy(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                       float* dlogits, int* count) override {
    all("cross_entropy", {logits, targets});
    optional("cross_entropy", dlogits);
    require_host(count, "cross_entropy (count)");
    Open o(this);
    ++trips_.host_results;
    return cpu_.cross_entropy(logits, targets, rows, V, grad_scale, dlogits, count);
  }
  void adamw_step(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int t, float grad_scale) override {
    all("adamw_step", {p, g, m, v});
    Open o(this);
    cpu_.adamw_step(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, t, grad_scale);
  }
  void sgd_step(float* p, const float* g, size_t n, float lr, float weight_decay, float grad_scale) override {
    all("sgd_step", {p, g});
    Open o(this);
    cpu_.sgd_step(p, g, n, lr, weight_decay, grad_scale);
  }
  double sum_squares(const float* x, size_t n) override {
    all("sum_squares", {x});
    Open o(this);
    ++trips_.host_results;
    return cpu_.sum_squares(x, n);
  }
  void nf4_dequantize(const ps::Nf4Weight& W, float* w) override {
    nf4("nf4_dequantize", W);
    all("nf4_dequantize", {w});
    Open o(this);
    cpu_.nf4_dequantize(W, w);
  }
  void nf4_gemm_nt(int M, const float* X, int ldx, const ps::Nf4Weight& W, float alpha, float beta, float* Y,
                   int ldy) override {
    nf4("nf4_gemm_nt", W);
    all("nf4_gemm_nt", {X, Y});
    Open o(this);
    cpu_.nf4_gemm_nt(M, X, ldx, W, alpha, beta, Y, ldy);
  }
  void nf4_gemm_nn(int M, const float* dY, int lddy, const ps::Nf4Weight& W, float alpha, float beta, float* dX,
                   int lddx) override {
    nf4("nf4_gemm_nn", W);
    all("nf4_gemm_nn", {dY, dX});
    Open o(this);
    cpu_.nf4_gemm_nn(M, dY, lddy, W, alpha, beta, dX, lddx);
  }
  void half_gemm_nt(int M, const float* X, int ldx, const ps::HalfWeight& W, float alpha, float beta, float* Y,
                    int ldy) override {
    half("half_gemm_nt", W);
    all("half_gemm_nt", {X, Y});
    Open o(this);
    ++half_gemm_calls();
    cpu_.half_gemm_nt(M, X, ldx, W, alpha, beta, Y, ldy);
  }
  void half_gemm_nn(int M, const float* dY, int lddy, const ps::HalfWeight& W, float alpha, float beta, float* dX,
                    int lddx) override {
    half("half_gemm_nn", W);
    all("half_gemm_nn", {dY, dX});
    Open o(this);
    ++half_gemm_calls();
    cpu_.half_gemm_nn(M, dY, lddy, W, alpha, beta, dX, lddx);
  }
  // ---- the few-round-trips ops ---------------------------------------------
  void sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) override {
    require_host(xs, "sum_squares_many (tensor list)");
    require_host(ns, "sum_squares_many (sizes)");
    require_host(out, "sum_squares_many (results)");
    for (int i = 0; i < count; ++i) require(xs[i], "sum_squares_many");
    Open o(this);
    ++trips_.host_results;
    cpu_.sum_squares_many(xs, ns, count, out);
  }
  void cross_entropy_rows(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                          float* dlogits, double* loss) override {
    all("cross_entropy_rows", {logits, targets, loss});
    optional("cross_entropy_rows", dlogits);
    Open o(this);
    cpu_.cross_entropy_rows(logits, targets, rows, V, grad_scale, dlogits, loss);
  }
  void tanh_forward(float* x, size_t n) override {
    all("tanh_forward", {x});
    Open o(this);
    cpu_.tanh_forward(x, n);
  }
  void tanh_backward(const float* y, float* dx, size_t n) override {
    all("tanh_backward", {y, dx});
    Open o(this);
    cpu_.tanh_backward(y, dx, n);
  }
  void embedding_forward_half(const int32_t* ids, int rows, const uint16_t* table, bool bf16, int table_rows, int D,
                              float* out) override {
    all("embedding_forward_half", {ids, table, out});
    Open o(this);
    cpu_.embedding_forward_half(ids, rows, table, bf16, table_rows, D, out);
  }

 private:
  // The region is readable and writable exactly while one of our calls runs.
  struct Open {
    explicit Open(DeviceSimBackend*) { protect(PROT_READ | PROT_WRITE); }
    ~Open() { protect(PROT_NONE); }
    static void protect(int prot) {
      Region& r = region();
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      const size_t len = (r.used + page - 1) / page * page;
      if (len && mprotect(r.base, len, prot) != 0) throw std::runtime_error("DeviceSimBackend: mprotect failed");
    }
  };

  static bool in_region(const void* p) {
    const Region& r = region();
    const uint8_t* a = static_cast<const uint8_t*>(p);
    return a >= r.base && a < r.base + r.used;
  }
  static void require(const void* p, const char* op) {
    if (!in_region(p))
      throw std::logic_error(std::string("DeviceSimBackend: ") + op +
                             " got a pointer that is not backend memory (host memory handed to a device op)");
  }
  static void optional(const char* op, const void* p) {
    if (p) require(p, op);
  }
  static void require_host(const void* p, const char* what) {
    if (in_region(p))
      throw std::logic_error(std::string("DeviceSimBackend: ") + what + " is backend memory, expected host memory");
  }
  static void all(const char* op, std::initializer_list<const void*> ps) {
    for (const void* p : ps) require(p, op);
  }
  // A 16-bit weight must live in backend memory too (never the file mapping).
  static void half(const char* op, const ps::HalfWeight& W) { require(W.data, op); }
  static void nf4(const char* op, const ps::Nf4Weight& W) {
    require(W.codes, op);
    if (W.double_quantized()) {
      require(W.absmax_codes, op);
      require(W.absmax_map, op);
      require(W.nested_absmax, op);
    } else {
      require(W.absmax, op);
    }
  }

  ps::CpuBackend cpu_;
  bool bf16_activations_ = false;
  struct sigaction old_segv_;
  RoundTrips trips_;
};

}  // namespace devsim
