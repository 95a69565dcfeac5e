// The device side of an NF4 weight (quant/nf4_weight.h), shared by the
// dequantize kernels (nf4.cu) and the fused GEMV (weight_gemv.cu) so that
// both compute every value with the same operations: element i is
// table[code_i] * absmax(i / blocksize), and with double quantization
// absmax = map[absmax_code] * nested_absmax[b / nested_blocksize], rounded,
// THEN + nested_offset, rounded: bitsandbytes' order, spelled with _rn
// intrinsics so that no fused multiply-add changes a bit.
#pragma once

#include <cstdint>

#include "cuda_common.cuh"
#include "quant/nf4_weight.h"

namespace ps {
namespace cuda {

// An Nf4Weight's device pointers and scalars, passed to kernels by value.
struct Nf4Args {
  const uint8_t* codes;
  const float* absmax;
  const uint8_t* absmax_codes;
  const float* absmax_map;
  const float* nested_absmax;
  long long blocksize, nested_blocksize;
  int block_shift, nested_shift;  // log2 of each (bitsandbytes' sizes are powers of two): no divide per value
  float nested_offset;
  bool double_quant;
};

// log2 of a power of two; anything else is a weight the loaders never make.
inline int log2_exact(long long n, const char* what) {
  int shift = 0;
  while (shift < 62 && (1LL << shift) < n) ++shift;
  if (n <= 0 || (1LL << shift) != n)
    throw Error(std::string("NF4 ") + what + " " + std::to_string(n) + " is not a power of two (bitsandbytes' sizes are)");
  return shift;
}

inline Nf4Args nf4_args_of(const Nf4Weight& W) {
  Nf4Args a;
  a.codes = W.codes;
  a.absmax = W.absmax;
  a.absmax_codes = W.absmax_codes;
  a.absmax_map = W.absmax_map;
  a.nested_absmax = W.nested_absmax;
  a.blocksize = W.blocksize;
  a.nested_blocksize = W.nested_blocksize;
  a.nested_offset = W.nested_offset;
  a.double_quant = W.double_quantized();
  a.block_shift = log2_exact(W.blocksize, "blocksize");
  a.nested_shift = a.double_quant ? log2_exact(W.nested_blocksize, "nested blocksize") : 0;
  return a;
}

// The fp32 absmax of block b.
static __device__ __forceinline__ float nf4_block_scale(const Nf4Args& W, long long b) {
  if (W.double_quant) {
    const float scaled = __fmul_rn(W.absmax_map[W.absmax_codes[b]], W.nested_absmax[b >> W.nested_shift]);
    return __fadd_rn(scaled, W.nested_offset);
  }
  return W.absmax[b];
}

// Code c (0..15) of the flattened element i.
static __device__ __forceinline__ int nf4_code(const Nf4Args& W, long long i) {
  const uint8_t byte = W.codes[i >> 1];
  return (i & 1) ? (byte & 0x0F) : (byte >> 4);
}

// The dequantized value of a code with its block's absmax.
static __device__ __forceinline__ float nf4_value(const float* table, int code, float scale) {
  return __fmul_rn(table[code], scale);
}

}  // namespace cuda
}  // namespace ps
