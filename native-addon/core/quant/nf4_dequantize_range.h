// Dequantizing part of a 4-bit NF4 weight: values [first, first + n) of the
// flattened matrix, each exactly as nf4_dequantize_reference makes it
// (code_table[q_i] * block_absmax(i / blocksize), one fp32 multiply), so a
// caller can walk a weight of any size through a bounded buffer and get the
// same bits as the whole-tensor dequantization. `first` may fall anywhere: in
// the middle of a byte (an odd index: the low nibble), of a block of
// `blocksize` values or of a double quantization's group of nested_blocksize
// blocks; each value's block and group follow from its own index.
#pragma once

#include <cstdint>

#include "quant/nf4_weight.h"

namespace ps {

// Throws ps::Error when the range does not lie within [0, W.numel()).
void nf4_dequantize_range(const Nf4Weight& W, int64_t first, int64_t n, float* out);

}  // namespace ps
