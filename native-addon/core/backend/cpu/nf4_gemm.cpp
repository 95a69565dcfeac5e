// CPU NF4 ops: dequantize, the fused dequantize-GEMM for the forward (nt) and
// the input gradient (nn), and the fused dequantize-GEMV for generation.
//
// The fused GEMM never holds the fp32 weight: for each k-block it
// dequantizes only the slice of W that the fp32 GEMM would have packed,
// straight into the packed op(B) layout, and runs the fp32 GEMM's own
// packing of op(A) and micro-kernels (gemm_kernels.h) on it:
//   nn: op(B)[p, j] = W[p, j] -> each packed row of a panel is a contiguous
//       run of W, dequantized in place;
//   nt: op(B)[p, j] = W[j, p] -> nr rows of W are dequantized into a small
//       [nr x kc] tile (L1/L2) and transposed by the kernel set's pack_b.
// Each task owns a block of output columns and, per k-block, packs its slice
// of op(B) once and reuses it for every row of X (op(A) is packed once per
// block of at most kMbMax rows): the driver is weight_gemm_driver.h, shared
// with the 16-bit GEMM, this file gives it the dequantizer. The k-blocks depend on K and the kernel set only, so every
// output element is summed in the same order whatever the thread count:
// results are bit-identical across thread counts (and equal to
// dequantize-then-gemm up to that summation order).
//
// M <= kGemvMaxRows (generation): W is read once, at 4 bits per value, and
// decoded in registers. Rows of W are split evenly over the threads; each
// thread takes them in groups of up to 4, decodes the group's block scales
// once, and hands the group to the ISA's pass (nf4_avx512.cpp: one permute
// per 16 codes; nf4_avx2.cpp), which sums code * x per block and multiplies
// by the block's absmax once per block. That is a different summation order
// from dequantize-then-dot (each weight's rounding fl(code * absmax) is
// replaced by one rounding of the block's partial sum times absmax): the
// tests hold it to the fp32 summation bound 2 (K + 4) eps sum |x w|, and it
// is fixed by the ISA and W's shape, so bit-identical for any thread count.
// Shapes whose rows are not whole blocks, and the portable ISA, take a
// per-row path (the AVX2 general GEMV; or dequantize a row into L1 and dot).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "error.h"
#include "gemm_kernels.h"
#include "nf4_dequant_impl.h"
#include "nf4_kernels.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#include "weight_gemm_driver.h"
#include "workspace.h"

namespace ps {

namespace nf4k {
void dequant_run_portable(const Nf4Weight& W, int64_t i0, int64_t len, float* out) {
  const float* table = nf4_code_table();
  dequant_run(W, table, i0, len, out, [table](const uint8_t* bytes, float s, float* o) {
    for (int j = 0; j < 8; ++j) {
      o[2 * j] = table[bytes[j] >> 4] * s;
      o[2 * j + 1] = table[bytes[j] & 0x0F] * s;
    }
  });
}
}  // namespace nf4k

namespace {

using gemm::KernelSet;
using weightgemm::Layout;
using weightgemm::ceil_div;
using weightgemm::fused_gemm;
using weightgemm::zero_or_keep;


// Per-thread buffers, reused across calls (workspace.h).
thread_local Workspace t_row("the NF4 GEMM workspace");       // GEMV: one dequantized row
thread_local Workspace t_xpair("the NF4 GEMM workspace");     // GEMV: the caller's paired inputs, read by all threads
thread_local Workspace t_scales("the NF4 GEMM workspace");    // GEMV: one group's block scales

nf4k::DequantRunFn dequant_for(const CpuBackend& be) {
#if defined(PS_HAVE_AVX2_KERNELS)
  if (be.use_avx2()) return nf4k::dequant_run_avx2;
#endif
  (void)be;
  return nf4k::dequant_run_portable;
}

// The weight GEMM driver's converter (weight_gemm_driver.h): a run of W dequantized.
auto dequant_run(const CpuBackend& be, const Nf4Weight& W) {
  const nf4k::DequantRunFn dq = dequant_for(be);
  return [dq, &W](int64_t first, int len, float* dst) { dq(W, first, len, dst); };
}

// nt with few rows, per row of W: dequantize it into L1, then the kernel
// set's dot product with each input (portable), or the AVX2 general GEMV.
void gemv_per_row(nf4k::GemvIsa isa, ThreadPool& pool, bool parallel, int M, const float* X,
                  int ldx, const Nf4Weight& W, float alpha, bool accumulate, float* Y, int ldy) {
  const int N = (int)W.rows, K = (int)W.cols;
  const KernelSet& ks = gemm::portable_kernels();
  auto rows = [&](size_t n0, size_t n1) {
#if defined(PS_HAVE_AVX2_KERNELS)
    if (isa != nf4k::GemvIsa::Portable)
      return nf4k::gemv_nt_avx2(W, (int64_t)n0, (int64_t)n1, M, X, ldx, alpha, accumulate, Y, ldy);
#endif
    float* row = t_row.get((size_t)K + 16);
    for (size_t n = n0; n < n1; ++n) {
      nf4k::dequant_run_portable(W, (int64_t)n * K, K, row);
      for (int m = 0; m < M; ++m)
        ks.dot_rows(1, K, alpha, X + (size_t)m * ldx, row, K, accumulate, Y + (size_t)m * ldy + n, 1);
    }
  };
  if (parallel)
    pool.parallel_for((size_t)N, [&](size_t b, size_t e, int) { rows(b, e); });
  else
    rows(0, (size_t)N);
}

// nt with few rows and rows of whole blocks: groups of up to 4 rows of W
// through the ISA's pass, on inputs put once per call in the order that pass
// reads (nf4_kernels.h).
void gemv_aligned(nf4k::GemvPassFn pass, nf4k::GemvInputOrderFn order, ThreadPool& pool,
                  bool parallel, int M, const float* X, int ldx, const Nf4Weight& W, float alpha,
                  bool accumulate, float* Y, int ldy) {
  constexpr int kGroup = 4;
  const int N = (int)W.rows, K = (int)W.cols, bs = W.blocksize;
  const int64_t nb = K / bs;
  float* xp = t_xpair.get((size_t)M * K);
  order(M, X, ldx, K, xp);
  auto rows = [&](size_t n0, size_t n1) {
    float* scales = t_scales.get((size_t)kGroup * nb);
    float dots[kGroup * nf4k::kGemvMaxRows];
    for (int64_t n = (int64_t)n0; n < (int64_t)n1; n += kGroup) {
      const int nw = (int)std::min<int64_t>(kGroup, (int64_t)n1 - n);
      nf4k::block_scales(W, n * nb, nw * nb, scales);
      pass(M, nw, W.codes + n * K / 2, K, bs, scales, xp, dots);
      for (int w = 0; w < nw; ++w)
        for (int m = 0; m < M; ++m) {
          float& y = Y[(size_t)m * ldy + n + w];
          const float dot = dots[w * M + m];
          y = accumulate ? y + alpha * dot : alpha * dot;
        }
    }
  };
  if (parallel)
    pool.parallel_for((size_t)N, [&](size_t b, size_t e, int) { rows(b, e); });
  else
    rows(0, (size_t)N);
}

#if defined(PS_HAVE_AVX2_KERNELS)
bool cpu_has_avx512() {
  static const bool yes = nf4k::avx512_gemv_supported();
  return yes;
}
#endif

}  // namespace

namespace nf4k {

const char* gemv_isa_name(GemvIsa isa) {
  switch (isa) {
    case GemvIsa::Avx2: return "avx2";
    case GemvIsa::Avx512: return "avx512";
    default: return "portable";
  }
}

std::vector<GemvIsa> usable_gemv_isas() {
  std::vector<GemvIsa> isas{GemvIsa::Portable};
#if defined(PS_HAVE_AVX2_KERNELS)
  const CpuFeatures f = detect_cpu_features();
  if (f.avx2 && f.fma) isas.push_back(GemvIsa::Avx2);
  if (cpu_has_avx512()) isas.push_back(GemvIsa::Avx512);
#endif
  return isas;
}

GemvIsa gemv_isa_for(const CpuBackend& backend) {
#if defined(PS_HAVE_AVX2_KERNELS)
  if (backend.use_avx2()) return cpu_has_avx512() ? GemvIsa::Avx512 : GemvIsa::Avx2;
#endif
  (void)backend;
  return GemvIsa::Portable;
}

void pair_inputs(int M, const float* X, int ldx, int K, float* Xp) {
  for (int m = 0; m < M; ++m) {
    const float* x = X + (size_t)m * ldx;
    float* d = Xp + (size_t)m * K;
    for (int c = 0; c + 32 <= K; c += 32)
      for (int j = 0; j < 16; ++j) d[c + j] = x[c + 2 * j], d[c + 16 + j] = x[c + 2 * j + 1];
  }
}

void order_inputs_avx2(int M, const float* X, int ldx, int K, float* Xp) {
  for (int m = 0; m < M; ++m) {
    const float* x = X + (size_t)m * ldx;
    float* d = Xp + (size_t)m * K;
    for (int c = 0; c + 8 <= K; c += 8)
      for (int j = 0; j < 4; ++j) d[c + j] = x[c + 2 * j], d[c + 4 + j] = x[c + 2 * j + 1];
  }
}

void gemv_nt(GemvIsa isa, ThreadPool& pool, int M, const float* X, int ldx, const Nf4Weight& W,
             float alpha, float beta, float* Y, int ldy) {
  if (M < 1 || M > kGemvMaxRows)
    throw Error("nf4 gemv: M must be 1.." + std::to_string(kGemvMaxRows) + ", got " + std::to_string(M));
  nf4_check_weight(W, "nf4 gemv");
  const bool accumulate = beta != 0.0f;
  const bool parallel = pool.size() > 1 && (double)M * W.rows * W.cols >= gemm::kGemvParallelMinFmas;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (isa != GemvIsa::Portable && gemv_rows_aligned(W)) {
    if (isa == GemvIsa::Avx512)
      return gemv_aligned(gemv_pass_avx512, pair_inputs, pool, parallel, M, X, ldx, W, alpha,
                          accumulate, Y, ldy);
    return gemv_aligned(gemv_pass_avx2, order_inputs_avx2, pool, parallel, M, X, ldx, W, alpha,
                        accumulate, Y, ldy);
  }
#endif
  gemv_per_row(isa, pool, parallel, M, X, ldx, W, alpha, accumulate, Y, ldy);
}

}  // namespace nf4k

void CpuBackend::nf4_dequantize(const Nf4Weight& W, float* w) {
  nf4_check_weight(W, "nf4_dequantize");
  const nf4k::DequantRunFn dq = dequant_for(*this);
  const int64_t n = W.numel();
  const int64_t chunk = int64_t{1} << 16;  // whole chunks per task: independent of the split
  const size_t chunks = (size_t)((n + chunk - 1) / chunk);
  auto run = [&](size_t c0, size_t c1) {
    for (size_t c = c0; c < c1; ++c) {
      const int64_t i0 = (int64_t)c * chunk;
      dq(W, i0, std::min(chunk, n - i0), w + i0);
    }
  };
  if (pool().size() > 1 && chunks > 1)
    pool().parallel_for(chunks, [&](size_t b, size_t e, int) { run(b, e); });
  else
    run(0, chunks);
}

void CpuBackend::nf4_gemm_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha,
                             float beta, float* Y, int ldy) {
  nf4_check_gemm_args("nf4_gemm_nt", M, W, ldx, (int)W.cols, ldy, (int)W.rows, beta);
  if (M == 0) return;
  if (alpha == 0.0f) return zero_or_keep(M, (int)W.rows, beta, Y, ldy);
  if (M <= nf4k::kGemvMaxRows)
    return nf4k::gemv_nt(nf4k::gemv_isa_for(*this), pool(), M, X, ldx, W, alpha, beta, Y, ldy);
  fused_gemm(gemm::kernels_for(*this), pool(), dequant_run(*this, W), Layout::NT, W.rows, W.cols, M, X, ldx, alpha,
             beta, Y, ldy);
}

void CpuBackend::nf4_gemm_nn(int M, const float* dY, int lddy, const Nf4Weight& W, float alpha,
                             float beta, float* dX, int lddx) {
  nf4_check_gemm_args("nf4_gemm_nn", M, W, lddy, (int)W.rows, lddx, (int)W.cols, beta);
  if (M == 0) return;
  if (alpha == 0.0f) return zero_or_keep(M, (int)W.cols, beta, dX, lddx);
  fused_gemm(gemm::kernels_for(*this), pool(), dequant_run(*this, W), Layout::NN, W.rows, W.cols, M, dY, lddy,
             alpha, beta, dX, lddx);
}

}  // namespace ps
