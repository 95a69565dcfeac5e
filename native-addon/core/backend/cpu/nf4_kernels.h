// Internal pieces of the CPU NF4 ops (not part of the op contract): the
// dequantize-a-run primitive in its portable and AVX2 forms, and the fused
// dequantize-GEMV of generation in its portable, AVX2 and AVX-512 forms. The
// fused GEMMs in nf4_gemm.cpp call the dequantizer to fill tiles straight
// into the packed layout of the fp32 GEMM's micro-kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/nf4_weight.h"

namespace ps {

class CpuBackend;
class ThreadPool;

namespace nf4k {

// out[0 .. len) = dequantized elements i0 .. i0+len of W (flat, row-major).
using DequantRunFn = void (*)(const Nf4Weight& W, int64_t i0, int64_t len, float* out);

void dequant_run_portable(const Nf4Weight& W, int64_t i0, int64_t len, float* out);
#if defined(PS_HAVE_AVX2_KERNELS)
// Only after the run-time check (CpuBackend::use_avx2()).
void dequant_run_avx2(const Nf4Weight& W, int64_t i0, int64_t len, float* out);
#endif

// ---- GEMV (nf4_gemm_nt with M <= kGemvMaxRows) ------------------------------
constexpr int kGemvMaxRows = 4;

// Which instruction set runs the GEMV. CpuBackend picks the best the CPU has
// (gemv_isa_for); tests run every one in usable_gemv_isas() through gemv_nt.
enum class GemvIsa { Portable, Avx2, Avx512 };
const char* gemv_isa_name(GemvIsa isa);
std::vector<GemvIsa> usable_gemv_isas();  // portable first
GemvIsa gemv_isa_for(const CpuBackend& backend);

// The fast GEMV layout: every row of W is whole blocks (cols % blocksize ==
// 0, so cols % 32 == 0 and each row starts on a byte and on a block). Other
// shapes take the general per-element path (same contract, slower).
inline bool gemv_rows_aligned(const Nf4Weight& W) { return W.cols % W.blocksize == 0; }

// Y[m, n] = alpha * dot(X[m, :], W[n, :]) (+ Y[m, n] when beta == 1), M <=
// kGemvMaxRows; rows of W split over the pool. Every output is summed in an
// order fixed by (isa, W's shape): bit-identical for any thread count.
void gemv_nt(GemvIsa isa, ThreadPool& pool, int M, const float* X, int ldx, const Nf4Weight& W,
             float alpha, float beta, float* Y, int ldy);

// The portable GEMV dequantizes each row of W into an L1-resident buffer and
// reuses the fp32 GEMM's dot product; the AVX2 and AVX-512 ones decode codes
// in registers. In the aligned layout they take X reordered once per call
// into the order their decoded weights come out in (row m of Xp at Xp + m *
// K). Byte j of a 16-byte run of codes holds element 2j in its high nibble
// and 2j+1 in its low one. AVX-512 takes X "paired": each run of 32 inputs
// x[32c .. 32c+32) stored as its 16 even-index elements, then its 16
// odd-index ones, so the high nibbles of 16 bytes meet the 16 even inputs and
// the low ones the 16 odd inputs with no shuffle of the decoded weights.
void pair_inputs(int M, const float* X, int ldx, int K, float* Xp);
// AVX2 takes each run of 8 inputs x[8c .. 8c+8) as its 4 even-index elements,
// then its 4 odd ones: the order its byte-plane lookup yields (nf4_avx2.cpp).
void order_inputs_avx2(int M, const float* X, int ldx, int K, float* Xp);
using GemvInputOrderFn = void (*)(int M, const float* X, int ldx, int K, float* Xp);

// One pass of the aligned GEMV over nw (1..4) consecutive rows of W starting
// at `codes` (row stride K / 2 bytes), for M (1..kGemvMaxRows) rows of
// paired inputs Xp; scales[w * nb + b] is the absmax of block b of row w
// (nb = K / blocksize). For each row w and input r:
//   dots[w * M + r] = sum_b scales[w*nb + b] * (sum over block b of code * x)
// the inner sum by FMAs in an order fixed by the ISA and K alone (never by
// nw or by which rows share the pass), then one FMA per block into the total.
using GemvPassFn = void (*)(int M, int nw, const uint8_t* codes, int64_t K, int blocksize,
                            const float* scales, const float* Xp, float* dots);
#if defined(PS_HAVE_AVX2_KERNELS)
// Only after the run-time checks (use_avx2(); avx512_gemv_supported()).
void gemv_pass_avx2(int M, int nw, const uint8_t* codes, int64_t K, int blocksize,
                    const float* scales, const float* Xp, float* dots);
bool avx512_gemv_supported();
void gemv_pass_avx512(int M, int nw, const uint8_t* codes, int64_t K, int blocksize,
                      const float* scales, const float* Xp, float* dots);
// General layout (any cols, rows starting mid-byte or mid-block), AVX2:
// codes decoded in registers (never stored); each dot has a fixed order.
void gemv_nt_avx2(const Nf4Weight& W, int64_t n0, int64_t n1, int M, const float* X, int ldx,
                  float alpha, bool accumulate, float* Y, int ldy);
#endif

}  // namespace nf4k
}  // namespace ps
