// Quantizing an fp32 weight to NF4 exactly as bitsandbytes' quantize_4bit does
// (../shared/reference/nf4.md), optionally with double quantization of the
// per-block absmax values, plus the readable reference dequantize.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/nf4_weight.h"

namespace ps {

class ThreadPool;

constexpr int kNf4DefaultBlocksize = 64;
constexpr int kNf4NestedBlocksize = 256;  // double quantization's block of absmax values

// Throws ps::Error unless blocksize is one bitsandbytes accepts for 4-bit
// quantization (a power of two in [32, 4096]).
void nf4_check_blocksize(int blocksize);

// The owned buffers of a quantized weight; view() points an Nf4Weight at them.
struct Nf4Quantized {
  int64_t rows = 0, cols = 0;
  int blocksize = kNf4DefaultBlocksize;
  std::vector<uint8_t> codes;          // (rows*cols + 1) / 2 packed bytes
  std::vector<float> absmax;           // without double quantization: one per block
  std::vector<uint8_t> absmax_codes;   // with it: one 8-bit code per block
  std::vector<float> nested_absmax;    // with it: one per 256 blocks
  float nested_offset = 0.0f;          // with it: the mean subtracted
  bool double_quant() const { return !absmax_codes.empty(); }

  Nf4Weight view() const;
  // Bytes the weight occupies in memory (codes + scales, not counting the
  // shared 16- and 256-entry tables).
  size_t resident_bytes() const;
};

// w: rows x cols fp32, row-major. Throws ps::Error on a bad blocksize, an
// empty or oversized shape, or a non-finite value (naming its position).
// With a pool, a large weight's blocks are quantized across its threads (each
// block is independent and owns whole bytes of codes; the double
// quantization's mean is still summed serially in block order), so the bytes
// are the same for every thread count, and the same as without a pool.
Nf4Quantized nf4_quantize(const float* w, int64_t rows, int64_t cols,
                          int blocksize = kNf4DefaultBlocksize, bool double_quant = true,
                          ThreadPool* pool = nullptr);

// Readable reference: w[i] = code[q_i] * block_absmax(i / blocksize), fp32.
void nf4_dequantize_reference(const Nf4Weight& W, float* w);

// Checks an Nf4Weight that came from outside (a checkpoint, the addon):
// dimensions, blocksize, pointers. `what` names it in the message.
void nf4_check_weight(const Nf4Weight& W, const char* what);

// Checks the arguments of a 4-bit GEMM (nf4_gemm_nt / nf4_gemm_nn, every
// backend): the weight, M >= 0, beta 0 or 1, and the row strides of the
// input and output against their minimum (used only when M > 0).
void nf4_check_gemm_args(const char* op, int M, const Nf4Weight& W, int ld_in, int ld_in_min, int ld_out,
                         int ld_out_min, float beta);

}  // namespace ps
