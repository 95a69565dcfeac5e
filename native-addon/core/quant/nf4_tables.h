// The two fixed code books of bitsandbytes' NF4 with double quantization
// (../shared/reference/nf4.md): the 16 NF4 values and the signed dynamic
// 8-bit map that the per-block absmax values are quantized with.
#pragma once

namespace ps {

// NF4 code values, index 0..15, ascending (quantiles of N(0,1), exact zero at 7).
const float* nf4_code_table();  // [16]

// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7,
// total_bits=8), built in fp32 the way torch builds it; ascending.
const float* dynamic_map_signed();  // [256]

}  // namespace ps
