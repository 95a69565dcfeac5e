// Internal pieces of the CPU GEMM (not part of the op contract).
//
// The driver in gemm.cpp is a GotoBLAS/BLIS-style blocked GEMM: for each
// output block it packs a slice of op(A) into mr-row micro-panels and a slice
// of op(B) into nr-column micro-panels, then a register-blocked micro-kernel
// multiplies one micro-panel pair. Everything that depends on the instruction
// set (packing, micro-kernel, the two GEMV shapes) is gathered in a KernelSet,
// so the portable, AVX2 (6x16) and AVX-512 (12x32) paths share the blocking
// and threading.
//
// Strided operands: element (i, p) of op(A) lives at a[i * rs + p * cs] and
// element (p, j) of op(B) at b[p * rs + j * cs]; the three layouts (nt, nn, tn)
// only differ in which of the two strides is 1.
#pragma once

#include <cstddef>
#include <vector>

namespace ps {
class CpuBackend;
class ThreadPool;

namespace gemm {

// From this many multiply-adds a matrix-vector product (generation's every
// linear, M or N == 1) is split over the pool; below, the calling thread does
// it alone. A GEMV is memory-bound, and in generation the weights come from
// DRAM, not from a warm L2: each token walks the whole model. The pool's
// workers are spinning between the back-to-back ops of a token, so a hand-off
// costs about a microsecond, and splitting pays from ~32k multiply-adds (128
// KiB of fp32 weights, ~10 us on one core). Measured on a SmolLM2-135M-shaped
// model, 2 threads, old and new builds interleaved three times (best of each):
// 1 << 19, which left the attention projections on one thread, gave 27.6 /
// 34.5 / 67.8 tokens/s (fp32 / f16 / NF4 weights); 1 << 15 gives 31.1 / 38.0
// / 66.7 (NF4's GEMV is bound by its dequantization, not by the hand-off; a
// first sweep put 1 << 13 and 1 << 17 below 1 << 15). The split is by output
// rows (or columns), each computed in a fixed order: the same bits on any
// number of threads.
constexpr double kGemvParallelMinFmas = 1 << 15;

struct KernelSet {
  const char* name;
  int mr;      // micro-tile rows
  int nr;      // micro-tile columns
  int kc_max;  // k-block limit: a kc x nr panel of op(B) must sit in L1 with room to spare

  // Packs rows [0, rows) x k [0, kc) of op(A) into ceil(rows / mr) micro-panels
  // of mr * kc floats, k-major (panel[p * mr + i]). Rows past `rows` are zero.
  // May write up to kPackSlack floats past the last panel.
  void (*pack_a)(const float* a, ptrdiff_t rs, ptrdiff_t cs, int rows, int kc, float* dst);

  // Packs k [0, kc) x columns [0, cols) of op(B) into ceil(cols / nr)
  // micro-panels of kc * nr floats (panel[p * nr + j]). Columns past `cols`
  // are zero. May write up to kPackSlack floats past the last panel.
  void (*pack_b)(const float* b, ptrdiff_t rs, ptrdiff_t cs, int kc, int cols, float* dst);

  // acc = (mr x kc panel a) * (kc x nr panel b), summed over p in order; then
  // for i < rows, j < cols: c[i*ldc + j] = accumulate ? c + alpha*acc : alpha*acc
  // (c is not read when accumulate is false, so it may hold NaN).
  void (*micro)(int kc, const float* a, const float* b, float alpha, bool accumulate, float* c,
                ptrdiff_t ldc, int rows, int cols);

  // Optional (nullptr: use micro). The same product for a narrow tile,
  // cols <= nr / 2 and rows <= 2 * mr, where `a` holds two consecutive
  // micro-panels when rows > mr (a + mr * kc is the second). Used for the
  // last column panel and for LoRA's rank-wide products, where the full-width
  // kernel would spend half its multiply-adds on zero padding. Must give
  // bit-identical values to micro (same summation order, same update).
  void (*micro_narrow)(int kc, const float* a, const float* b, float alpha, bool accumulate,
                       float* c, ptrdiff_t ldc, int rows, int cols);

  // GEMV with contiguous rows: for j < n,
  //   y[j * incy] = (accumulate ? y : 0) + alpha * dot(x[0..k), w[j*ldw + 0..k)).
  // Each dot product has a fixed summation order, so results do not depend on
  // how the rows are split between threads. The AVX2 and AVX-512 sets sum in
  // the same order (bit-identical; dot_rows_in_avx2_order).
  void (*dot_rows)(int n, int k, float alpha, const float* x, const float* w, ptrdiff_t ldw,
                   bool accumulate, float* y, ptrdiff_t incy);

  // GEMV with contiguous columns: for j < n,
  //   y[j] = (accumulate ? y : 0) + alpha * sum_p x[p * incx] * w[p*ldw + j],
  // summed over p in increasing order (so independent of the column split).
  void (*axpy_rows)(int n, int k, float alpha, const float* x, ptrdiff_t incx, const float* w,
                    ptrdiff_t ldw, bool accumulate, float* y);
};

// Floats a packing routine may write past the end of its last micro-panel.
constexpr int kPackSlack = 16;

const KernelSet& portable_kernels();
#if defined(PS_HAVE_AVX2_KERNELS)
// Only call after the run-time check (CpuBackend::use_avx2()).
const KernelSet& avx2_kernels();
// AVX-512F: only after avx512_supported() (which needs no AVX2 check first).
bool avx512_supported();
const KernelSet& avx512_kernels();
// Whether ks.dot_rows sums in the AVX2 set's order (the AVX2 and AVX-512
// sets), the order the 16-bit fused GEMVs reproduce. After use_avx2() only.
bool dot_rows_in_avx2_order(const KernelSet& ks);
#endif

// The set CpuBackend's GEMMs use: portable when the backend was made with
// force_portable or the CPU lacks AVX2/FMA, else AVX-512 when the CPU has it,
// else AVX2.
const KernelSet& kernels_for(const CpuBackend& backend);
// The set a CpuBackend made without force_portable takes on this CPU.
const KernelSet& default_kernels();

// Every set this CPU can run (portable first); tests run each of them.
std::vector<const KernelSet*> usable_kernel_sets();

// What the GEMM's Workspaces (workspace.h) hold, for the memory estimate
// (scratch_bounds.h); run() sizes them with the same functions.
// For one M x N x K product on a pool of `threads` threads: the packing slots
// (pack) and the packed op(A) its column blocks share (shared; 0: each block
// packs its own).
struct GemmWorkspace {
  size_t pack = 0;
  size_t shared_a = 0;
};
GemmWorkspace gemm_workspace_floats(const KernelSet& ks, int M, int N, int K, int threads);

// The blocked GEMM with an explicit kernel set (what CpuBackend::gemm_* call
// after checking their arguments), C = alpha op(A) op(B) + beta C:
//   nt: op(A) = A[M,K],    op(B) = B[N,K]^T
//   nn: op(A) = A[M,K],    op(B) = B[K,N]
//   tn: op(A) = A[K,M]^T,  op(B) = B[K,N]
enum class Layout { NT, NN, TN };
void gemm(const KernelSet& ks, ThreadPool& pool, Layout layout, int M, int N, int K, float alpha,
          const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace gemm
}  // namespace ps
