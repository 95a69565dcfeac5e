// Internal pieces of the CPU 16-bit GEMMs (half_gemm.cpp; not part of the op
// contract): exact widening of runs of bfloat16 / IEEE half values, in a
// portable form and an AVX2 / F16C form, and the AVX2 GEMV that widens in
// registers with the summation order of the AVX2 kernel set's dot_rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gemm_kernels.h"
#include "half_weight.h"

namespace ps {
class ThreadPool;

namespace halfk {

// How the 16-bit values are widened: Portable (plain C++), Avx2 (AVX2 /
// F16C runs; the fused GEMV in ymm registers) or Avx512 (the same, the fused
// GEMV in zmm registers). All give the same bits; CpuBackend takes the best
// the CPU has (isa_for), tests run every one in usable_isas().
enum class Isa { Portable, Avx2, Avx512 };
const char* isa_name(Isa isa);
std::vector<Isa> usable_isas();  // portable first

// The CpuBackend ops with an explicit fp32 kernel set (whose blocking and
// summation order they reproduce) and widening ISA; tests run them with every
// usable kernel set against gemm::gemm with that set.
void half_gemm_nt(const gemm::KernelSet& ks, ThreadPool& pool, Isa isa, int M, const float* X, int ldx,
                  const HalfWeight& W, float alpha, float beta, float* Y, int ldy);
void half_gemm_nn(const gemm::KernelSet& ks, ThreadPool& pool, Isa isa, int M, const float* dY, int lddy,
                  const HalfWeight& W, float alpha, float beta, float* dX, int lddx);

// dst[0 .. n) = src[0 .. n) widened exactly to fp32.
using WidenFn = void (*)(const uint16_t* src, size_t n, float* dst);
WidenFn widen_for(Isa isa, bool bf16);

void widen_bf16_portable(const uint16_t* src, size_t n, float* dst);
void widen_f16_portable(const uint16_t* src, size_t n, float* dst);

#if defined(PS_HAVE_AVX2_KERNELS)
// Only after the run-time checks: CpuBackend::use_avx2(); f16c_supported() for
// the IEEE half forms. (F16C widens every finite value, infinity and quiet
// NaN exactly as model/half.h does; a signalling NaN comes out quieted.)
bool f16c_supported();
void widen_bf16_avx2(const uint16_t* src, size_t n, float* dst);
void widen_f16_f16c(const uint16_t* src, size_t n, float* dst);

// The AVX2 kernel set's dot_rows (gemm_avx2.cpp) with the rows of W in 16
// bits, widened in registers: for j < n,
//   y[j * incy] = (accumulate ? y : 0) + alpha * dot(x[0..k), widen(w[j*ldw + 0..k)))
// with the very same operations in the same order, so the same bits as
// dot_rows on the widened rows; half the bytes read (generation's GEMV).
void dot_rows_avx2(int n, int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw, bool bf16,
                   bool accumulate, float* y, ptrdiff_t incy);
// The same bits with AVX-512F (one zmm holds the AVX2 form's two partial
// sums): only after gemm::avx512_supported() and, for IEEE half, f16c_supported().
void dot_rows_avx512(int n, int k, float alpha, const float* x, const uint16_t* w, ptrdiff_t ldw, bool bf16,
                     bool accumulate, float* y, ptrdiff_t incy);
#endif

}  // namespace halfk
}  // namespace ps
