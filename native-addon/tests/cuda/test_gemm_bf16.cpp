// The bf16 tensor-core GEMM (backend/cuda/gemm_bf16.h) against a float64
// reference computed here from the bf16-rounded operands: each product of
// two bf16 values is exact, so the only error allowed is fp32 accumulation
// over K terms. Per element:
//   |got - ref| <= 2 (K + 2) 2^-24 (|alpha| sum_p |a_ip b_pj| + |C0_ij|)
// (a rounding of up to 2 ulp per addition in any order, which also covers
// tensor cores that truncate instead of rounding). A second check proves the
// operands really are rounded to bf16: 1 + 2^-10 times 1 gives 1, not
// 1.0009765625. On a GPU with bf16 tensor cores both the PTX mma.sync and the
// portable warp-shuffle product run, which checks the fragment layout of
// mma_bf16.cuh against the hardware. The overloads taking B as raw bf16 bits
// (stored-weight GEMMs, weight_gemm.cu) give the same bits as the fp32 ones on
// the B that rounds to those bits. Under the CPU simulator (PS_CUDA_SIM)
// the portable product runs, on smaller shapes. Exits 77 (CTest: skipped)
// without a device.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_bf16.h"
#include "check.h"
#include "op_test_util.h"
#include "quant/bf16_round.h"

using ps::CudaBackend;
using ps::cuda::MmaPath;
using optest::Rand;

namespace {

enum class Layout { NT, NN, TN };
const char* name(Layout l) { return l == Layout::NT ? "nt" : l == Layout::NN ? "nn" : "tn"; }

struct Shape {
  int M, N, K;
};

template <typename T>
T* to_device(CudaBackend& be, const std::vector<T>& h) {
  T* p = static_cast<T*>(be.alloc(h.size() * sizeof(T) + 4));
  be.upload(p, h.data(), h.size() * sizeof(T));
  return p;
}

void run_gemm(Layout l, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
              float beta, float* C, int ldc, MmaPath path) {
  if (l == Layout::NT) ps::cuda::gemm_bf16_nt(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, path);
  if (l == Layout::NN) ps::cuda::gemm_bf16_nn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, path);
  if (l == Layout::TN) ps::cuda::gemm_bf16_tn(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, path);
}

// One product on random operands with leading dimensions wider than needed
// (the padding holds NaN: reading it would show), compared with the reference.
void check_product(CudaBackend& be, Rand& r, Layout l, Shape s, float alpha, float beta, MmaPath path,
                   const char* path_name) {
  const int M = s.M, N = s.N, K = s.K;
  // Stored shapes: nt A[M,K] B[N,K]; nn A[M,K] B[K,N]; tn A[K,M] B[K,N].
  const int a_rows = l == Layout::TN ? K : M, a_cols = l == Layout::TN ? M : K;
  const int b_rows = l == Layout::NT ? N : K, b_cols = l == Layout::NT ? K : N;
  const int lda = a_cols + 3, ldb = b_cols + 5, ldc = N + 2;
  std::vector<float> A(static_cast<size_t>(a_rows) * lda, NAN), B(static_cast<size_t>(b_rows) * ldb, NAN);
  for (int i = 0; i < a_rows; ++i)
    for (int j = 0; j < a_cols; ++j) A[static_cast<size_t>(i) * lda + j] = r.uniform(-2.0f, 2.0f);
  for (int i = 0; i < b_rows; ++i)
    for (int j = 0; j < b_cols; ++j) B[static_cast<size_t>(i) * ldb + j] = r.uniform(-2.0f, 2.0f);
  std::vector<float> C0(static_cast<size_t>(M) * ldc);
  for (auto& v : C0) v = r.uniform(-1.0f, 1.0f);
  auto opA = [&](int i, int p) { return l == Layout::TN ? A[static_cast<size_t>(p) * lda + i] : A[static_cast<size_t>(i) * lda + p]; };
  auto opB = [&](int p, int j) { return l == Layout::NT ? B[static_cast<size_t>(j) * ldb + p] : B[static_cast<size_t>(p) * ldb + j]; };

  float* dA = to_device(be, A);
  float* dB = to_device(be, B);
  float* dC = to_device(be, C0);
  run_gemm(l, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc, path);
  std::vector<float> C(C0.size());
  be.download(C.data(), dC, C.size() * sizeof(float));
  be.release(dA);
  be.release(dB);
  be.release(dC);

  size_t bad = 0;
  double worst = 0;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double sum = 0, mag = 0;
      for (int p = 0; p < K; ++p) {
        const double t = static_cast<double>(ps::round_to_bf16(opA(i, p))) * ps::round_to_bf16(opB(p, j));
        sum += t;
        mag += std::fabs(t);
      }
      const size_t at = static_cast<size_t>(i) * ldc + j;
      const double c0 = beta != 0.0f ? C0[at] : 0.0;
      const double want = alpha * sum + c0;
      const double limit = 2.0 * (K + 2) * std::ldexp(1.0, -24) * (std::fabs(alpha) * mag + std::fabs(c0)) + 1e-30;
      const double err = std::fabs(C[at] - want);
      if (!(err <= limit)) ++bad;
      if (err / limit > worst || std::isnan(err)) worst = std::isnan(err) ? INFINITY : err / limit;
    }
  // The padding columns of C are never written.
  for (int i = 0; i < M; ++i)
    for (int j = N; j < ldc; ++j)
      if (C[static_cast<size_t>(i) * ldc + j] != C0[static_cast<size_t>(i) * ldc + j]) ++bad;
  std::printf("  %s %-9s M=%-4d N=%-4d K=%-4d alpha=%-4g beta=%g  worst/limit %.3g  %s\n", name(l), path_name, M, N,
              K, alpha, beta, worst, bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__, std::string("gemm_bf16_") + name(l) + " " + path_name + ": " +
                                         std::to_string(bad) + " elements beyond the fp32-accumulation bound");
}

// 1 + 2^-10 is not a bf16 value (7 fraction bits): it rounds to 1, so the
// product with 1 summed over K = 8 is exactly 8 in bf16 and 8.0078125 in fp32.
void check_rounds_to_bf16(CudaBackend& be, MmaPath path) {
  const int K = 8;
  std::vector<float> A(K, 1.0f + 1.0f / 1024.0f), B(K, 1.0f), C(1, -5.0f);
  float* dA = to_device(be, A);
  float* dB = to_device(be, B);
  float* dC = to_device(be, C);
  ps::cuda::gemm_bf16_nt(1, 1, K, 1.0f, dA, K, dB, K, 0.0f, dC, 1, path);
  be.download(C.data(), dC, sizeof(float));
  be.release(dA);
  be.release(dB);
  be.release(dC);
  std::printf("  rounding: (1 + 2^-10) . 1 over K=8 gives %.10g (bf16: 8, fp32 would give 8.0078125)\n", C[0]);
  CHECK(C[0] == 8.0f);
}

// B given as raw bf16 bits (a BF16 weight as stored, or a weight converted
// into bf16 scratch): the same bits in C as the fp32 overload on any fp32 B
// whose rounding gives those bits (here: B itself, rounded on the host).
// Different padded strides for the two B's; beta 0 and 1.
void check_raw_bf16_b(CudaBackend& be, Rand& r, Layout l, Shape s, float beta, MmaPath path, const char* path_name) {
  const int M = s.M, N = s.N, K = s.K;
  const int b_rows = l == Layout::NT ? N : K, b_cols = l == Layout::NT ? K : N;
  const int lda = K + 1, ldb = b_cols + 5, ldb16 = b_cols + 3, ldc = N + 2;
  std::vector<float> A(static_cast<size_t>(M) * lda), B(static_cast<size_t>(b_rows) * ldb, NAN);
  std::vector<uint16_t> B16(static_cast<size_t>(b_rows) * ldb16, 0xFFFF);
  for (auto& v : A) v = r.uniform(-2.0f, 2.0f);
  for (int i = 0; i < b_rows; ++i)
    for (int j = 0; j < b_cols; ++j) {
      const float v = r.uniform(-2.0f, 2.0f);
      B[static_cast<size_t>(i) * ldb + j] = v;
      B16[static_cast<size_t>(i) * ldb16 + j] = ps::f32_to_bf16(v);
    }
  std::vector<float> C0(static_cast<size_t>(M) * ldc);
  for (auto& v : C0) v = r.uniform(-1.0f, 1.0f);
  float* dA = to_device(be, A);
  float* dB = to_device(be, B);
  uint16_t* dB16 = to_device(be, B16);
  float* dC = to_device(be, C0);
  float* dC16 = to_device(be, C0);
  if (l == Layout::NT) {
    ps::cuda::gemm_bf16_nt(M, N, K, 0.75f, dA, lda, dB, ldb, beta, dC, ldc, path);
    ps::cuda::gemm_bf16_nt(M, N, K, 0.75f, dA, lda, dB16, ldb16, beta, dC16, ldc, path);
  } else {
    ps::cuda::gemm_bf16_nn(M, N, K, 0.75f, dA, lda, dB, ldb, beta, dC, ldc, path);
    ps::cuda::gemm_bf16_nn(M, N, K, 0.75f, dA, lda, dB16, ldb16, beta, dC16, ldc, path);
  }
  std::vector<float> C(C0.size()), C16(C0.size());
  be.download(C.data(), dC, C.size() * sizeof(float));
  be.download(C16.data(), dC16, C16.size() * sizeof(float));
  for (void* p : {static_cast<void*>(dA), static_cast<void*>(dB), static_cast<void*>(dB16), static_cast<void*>(dC),
                  static_cast<void*>(dC16)})
    be.release(p);
  const bool same = std::memcmp(C.data(), C16.data(), C.size() * sizeof(float)) == 0;
  std::printf("  %s %-9s M=%-4d N=%-4d K=%-4d beta=%g  raw bf16 B == rounded fp32 B: %s\n", name(l), path_name, M, N,
              K, beta, same ? "bit-identical" : "DIFFERENT (FAIL)");
  if (!same)
    pstest::fail(__FILE__, __LINE__, std::string("gemm_bf16_") + name(l) + " with a raw bf16 B differs in bits");
}

void check_errors(CudaBackend& be) {
  float* d = static_cast<float*>(be.alloc(64));
  auto throws = [](auto fn, const char* needle) {
    try {
      fn();
    } catch (const ps::Error& e) {
      return std::string(e.what()).find(needle) != std::string::npos;
    }
    return false;
  };
  CHECK(throws([&] { ps::cuda::gemm_bf16_nt(2, 2, 2, 1.0f, d, 2, d, 2, 0.5f, d, 2); }, "beta must be 0 or 1"));
  CHECK(throws([&] { ps::cuda::gemm_bf16_nn(2, 3, 2, 1.0f, d, 2, d, 2, 0.0f, d, 3); }, "ldb 2 is below 3"));
  CHECK(throws([&] { ps::cuda::gemm_bf16_tn(-1, 3, 2, 1.0f, d, 2, d, 2, 0.0f, d, 3); }, "negative dimension"));
  be.release(d);
}

}  // namespace

// The prefetching kernel (GemmBf16Kernel::kPrefetch) against the simple one:
// the same bits in C, for every layout, fp32 and raw-bf16 B, with row strides
// that allow 16-byte loads (multiples of 4) and strides that do not, operands
// that start off a 16-byte (8-byte for bf16) boundary, tails in M, N and K
// (the vector chunks at the edges fall back to single loads). In the
// simulator the kernel checks the alignment of every vector access itself
// (the GPU faults on a misaligned one; the simulator would not).
void check_prefetch_same_bits(CudaBackend& be, Rand& r, MmaPath path) {
  using ps::cuda::GemmBf16Kernel;
  struct Case { int M, N, K, pad; };
#ifdef PS_CUDA_SIM
  const Case cases[] = {{130, 9, 40, 0}, {17, 33, 45, 3}, {64, 136, 64, 4}};
#else
  const Case cases[] = {{130, 9, 40, 0}, {17, 33, 45, 3}, {64, 136, 64, 4}, {257, 300, 130, 0}, {512, 512, 512, 1}};
#endif
  // where each operand starts, in elements past an aligned allocation: A (fp32), B (fp32 or bf16)
  struct Offsets { int a, b; };
  const Offsets offsets[] = {{0, 0}, {1, 1}, {4, 2}, {0, 4}};
  size_t compared = 0, differing = 0;
  for (Layout l : {Layout::NT, Layout::NN, Layout::TN})
    for (const Case& c : cases)
      for (bool raw_b : {false, true})
        for (const Offsets& off : offsets) {
        if (raw_b && l == Layout::TN) continue;  // raw-bf16 B: nt and nn only
        const int a_rows = l == Layout::TN ? c.K : c.M, a_cols = l == Layout::TN ? c.M : c.K;
        const int b_rows = l == Layout::NT ? c.N : c.K, b_cols = l == Layout::NT ? c.K : c.N;
        const int lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N;
        std::vector<float> A(off.a + static_cast<size_t>(a_rows) * lda), B(off.b + static_cast<size_t>(b_rows) * ldb);
        for (auto& v : A) v = r.uniform(-2.0f, 2.0f);
        for (auto& v : B) v = r.uniform(-2.0f, 2.0f);
        std::vector<uint16_t> B16(B.size());
        for (size_t i = 0; i < B.size(); ++i) B16[i] = ps::f32_to_bf16(B[i]);
        float* dA0 = to_device(be, A);
        float* dB0 = to_device(be, B);
        uint16_t* dB160 = to_device(be, B16);
        const float* dA = dA0 + off.a;
        const float* dB = dB0 + off.b;
        const uint16_t* dB16 = dB160 + off.b;
        std::vector<float> out[2];
        for (GemmBf16Kernel k : {GemmBf16Kernel::kSimple, GemmBf16Kernel::kPrefetch}) {
          ps::cuda::set_gemm_bf16_kernel(k);
          std::vector<float> C(static_cast<size_t>(c.M) * ldc, 0.5f);
          float* dC = to_device(be, C);
          if (!raw_b) run_gemm(l, c.M, c.N, c.K, 0.75f, dA, lda, dB, ldb, 1.0f, dC, ldc, path);
          else if (l == Layout::NT) ps::cuda::gemm_bf16_nt(c.M, c.N, c.K, 0.75f, dA, lda, dB16, ldb, 1.0f, dC, ldc, path);
          else ps::cuda::gemm_bf16_nn(c.M, c.N, c.K, 0.75f, dA, lda, dB16, ldb, 1.0f, dC, ldc, path);
          be.download(C.data(), dC, C.size() * sizeof(float));
          be.release(dC);
          out[k == GemmBf16Kernel::kPrefetch] = C;
        }
        ps::cuda::set_gemm_bf16_kernel(GemmBf16Kernel::kSimple);
        be.release(dA0);
        be.release(dB0);
        be.release(dB160);
        ++compared;
        if (std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)) != 0) {
          ++differing;
          std::printf("  prefetch != simple: %s M=%d N=%d K=%d pad %d offsets %d/%d%s\n", name(l), c.M, c.N, c.K,
                      c.pad, off.a, off.b, raw_b ? " (raw bf16 B)" : "");
        }
      }
  std::printf("  prefetching kernel: %zu products, %zu not bit-identical to the simple kernel\n", compared, differing);
  CHECK(compared > 0 && differing == 0);
}

// PS_CUDA_PARITY_TIMING=1 on a GPU: the two kernels' speed on training
// shapes (Llama-3.1-8B's MLP at 2048 tokens: forward nt, input gradient nn,
// weight gradient tn; fp32 and raw-bf16 weights), which decides the default.
void time_kernels(CudaBackend& be, Rand& r) {
  using ps::cuda::GemmBf16Kernel;
  std::printf("timing: simple vs prefetching bf16 GEMM kernel\n");
  struct Case { Layout l; int M, N, K; bool raw_b; const char* what; };
  const Case cases[] = {{Layout::NT, 2048, 14336, 4096, false, "forward, fp32 W"},
                        {Layout::NT, 2048, 14336, 4096, true, "forward, bf16 W"},
                        {Layout::NN, 2048, 4096, 14336, true, "input grad, bf16 W"},
                        {Layout::TN, 4096, 14336, 2048, false, "weight grad"},
                        {Layout::NT, 4096, 4096, 4096, false, "square"}};
  for (const Case& c : cases) {
    const int a_rows = c.l == Layout::TN ? c.K : c.M, a_cols = c.l == Layout::TN ? c.M : c.K;
    const int b_rows = c.l == Layout::NT ? c.N : c.K, b_cols = c.l == Layout::NT ? c.K : c.N;
    std::vector<float> A(static_cast<size_t>(a_rows) * a_cols), B(static_cast<size_t>(b_rows) * b_cols);
    for (auto& v : A) v = r.uniform(-1.0f, 1.0f);
    for (auto& v : B) v = r.uniform(-1.0f, 1.0f);
    std::vector<uint16_t> B16(B.size());
    for (size_t i = 0; i < B.size(); ++i) B16[i] = ps::f32_to_bf16(B[i]);
    float* dA = to_device(be, A);
    float* dB = to_device(be, B);
    uint16_t* dB16 = to_device(be, B16);
    float* dC = to_device(be, std::vector<float>(static_cast<size_t>(c.M) * c.N));
    double ms[2];
    for (GemmBf16Kernel k : {GemmBf16Kernel::kSimple, GemmBf16Kernel::kPrefetch}) {
      ps::cuda::set_gemm_bf16_kernel(k);
      auto once = [&] {
        if (!c.raw_b) run_gemm(c.l, c.M, c.N, c.K, 1.0f, dA, a_cols, dB, b_cols, 0.0f, dC, c.N, MmaPath::kAuto);
        else if (c.l == Layout::NT) ps::cuda::gemm_bf16_nt(c.M, c.N, c.K, 1.0f, dA, a_cols, dB16, b_cols, 0.0f, dC, c.N);
        else ps::cuda::gemm_bf16_nn(c.M, c.N, c.K, 1.0f, dA, a_cols, dB16, b_cols, 0.0f, dC, c.N);
      };
      once();
      be.synchronize();
      const int reps = 5;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) once();
      be.synchronize();
      ms[k == GemmBf16Kernel::kPrefetch] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    }
    ps::cuda::set_gemm_bf16_kernel(GemmBf16Kernel::kSimple);
    const double flops = 2.0 * c.M * c.N * c.K;
    std::printf("  %s %5dx%5dx%5d %-18s simple %7.2f ms (%5.0f TFLOP/s)  prefetch %7.2f ms (%5.0f TFLOP/s)  x%.2f\n",
                name(c.l), c.M, c.N, c.K, c.what, ms[0], flops / ms[0] / 1e9, ms[1], flops / ms[1] / 1e9, ms[0] / ms[1]);
    for (void* p : {static_cast<void*>(dA), static_cast<void*>(dB), static_cast<void*>(dB16), static_cast<void*>(dC)}) be.release(p);
  }
}

// cuBLASLt's bf16 operand copies (round_rows_to_bf16): every element as the
// host rounds it, row strides wider than the rows on both sides, the copy's
// padding columns untouched; one column of 70,000 rows takes the grid's row
// stride (65,535 rows of blocks at most), 1,000 columns several column blocks.
void check_operand_copy(CudaBackend& be, Rand& r) {
  struct Case { int rows, cols, ld, dst_ld; };
  for (const Case& k : {Case{1, 1, 1, 8}, Case{37, 5, 9, 8}, Case{3, 1000, 1003, 1008}, Case{70000, 1, 2, 8}}) {
    std::vector<float> src(static_cast<size_t>(k.rows) * k.ld);
    for (auto& x : src) x = r.uniform(-3.0f, 3.0f);
    src[0] = 1.0f + 1.0f / 256.0f;  // a tie: to even (1)
    const uint16_t kUntouched = 0xBEEF;
    std::vector<uint16_t> dst(static_cast<size_t>(k.rows) * k.dst_ld, kUntouched);
    float* dsrc = to_device(be, src);
    auto* ddst = static_cast<uint16_t*>(be.alloc(dst.size() * sizeof(uint16_t)));
    be.upload(ddst, dst.data(), dst.size() * sizeof(uint16_t));
    ps::cuda::round_rows_to_bf16(dsrc, k.ld, k.rows, k.cols, ddst, k.dst_ld);
    be.download(dst.data(), ddst, dst.size() * sizeof(uint16_t));
    be.release(dsrc);
    be.release(ddst);
    size_t wrong = 0;
    for (int i = 0; i < k.rows; ++i)
      for (int j = 0; j < k.dst_ld; ++j) {
        const uint16_t got = dst[static_cast<size_t>(i) * k.dst_ld + j];
        const uint16_t want = j < k.cols ? ps::f32_to_bf16(src[static_cast<size_t>(i) * k.ld + j]) : kUntouched;
        wrong += got != want;
      }
    std::printf("  operand copy %d x %d (ld %d -> %d): %zu wrong\n", k.rows, k.cols, k.ld, k.dst_ld, wrong);
    CHECK(wrong == 0);
    CHECK(dst[0] == 0x3F80);
  }
}

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_gemm_bf16: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    CudaBackend be(0);
    const ps::CudaDeviceInfo info = be.refreshed_info();
    const bool hardware = ps::cuda::has_bf16_tensor_cores(info);
    std::printf("device: %s (compute capability %d.%d): %s\n", info.name.c_str(), info.major, info.minor,
                hardware ? "PTX mma.sync and the portable product" : "the portable product only");
    Rand r(20261129);
#ifdef PS_CUDA_SIM
    // Every fiber switch costs a few hundred nanoseconds in the simulator:
    // shapes that still cover one and several tiles, tails in M, N and K.
    const std::vector<Shape> shapes = {{1, 1, 1}, {17, 33, 45}, {130, 9, 40}};
#else
    const std::vector<Shape> shapes = {{1, 1, 1}, {17, 33, 45}, {130, 129, 70}, {128, 128, 64},
                                       {5, 300, 33},  {257, 31, 130}, {64, 64, 1000}};
#endif
    for (Layout l : {Layout::NT, Layout::NN, Layout::TN})
      for (const Shape& s : shapes) {
        check_product(be, r, l, s, 1.0f, 0.0f, MmaPath::kAuto, hardware ? "mma.sync" : "portable");
        if (hardware) check_product(be, r, l, s, 1.0f, 0.0f, MmaPath::kPortable, "portable");
      }
    check_product(be, r, Layout::NT, {19, 21, 37}, 0.5f, 1.0f, MmaPath::kAuto, "accumulate");
    check_product(be, r, Layout::NN, {19, 21, 0}, 0.5f, 1.0f, MmaPath::kAuto, "K=0");
    check_product(be, r, Layout::TN, {19, 21, 0}, 2.0f, 0.0f, MmaPath::kAuto, "K=0 zero");
    for (Layout l : {Layout::NT, Layout::NN})
      for (const Shape& s : shapes)
        for (float beta : {0.0f, 1.0f}) {
          check_raw_bf16_b(be, r, l, s, beta, MmaPath::kAuto, hardware ? "mma.sync" : "portable");
          if (hardware) check_raw_bf16_b(be, r, l, s, beta, MmaPath::kPortable, "portable");
        }
    check_rounds_to_bf16(be, MmaPath::kAuto);
    if (hardware) check_rounds_to_bf16(be, MmaPath::kPortable);
    check_operand_copy(be, r);
    check_prefetch_same_bits(be, r, MmaPath::kAuto);
    if (hardware) check_prefetch_same_bits(be, r, MmaPath::kPortable);
    // the whole product check once more through the prefetching kernel
    ps::cuda::set_gemm_bf16_kernel(ps::cuda::GemmBf16Kernel::kPrefetch);
    for (Layout l : {Layout::NT, Layout::NN, Layout::TN})
      check_product(be, r, l, shapes.back(), 1.0f, 1.0f, MmaPath::kAuto, "prefetch");
    ps::cuda::set_gemm_bf16_kernel(ps::cuda::GemmBf16Kernel::kSimple);
    check_errors(be);
#ifndef PS_CUDA_SIM
    if (hardware && std::getenv("PS_CUDA_PARITY_TIMING")) time_kernels(be, r);
#endif
    be.synchronize();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_gemm_bf16");
}
