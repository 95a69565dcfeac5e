// A linear layer's weight held in 4-bit NF4, as bitsandbytes holds it
// (../shared/reference/nf4.md): the [out, in] matrix flattened row by row, cut
// into blocks of `blocksize` consecutive values (a block may cross a row end
// when in % blocksize != 0), two codes per byte with the even element in the
// high nibble, one absmax per block. With double quantization the absmax
// values are themselves 8-bit codes into the signed dynamic map, one fp32
// scale per `nested_blocksize` absmax values, plus the subtracted mean.
//
// The struct only points at memory; the engine (or a test) owns the bytes.
#pragma once

#include <cstdint>

namespace ps {

struct Nf4Weight {
  int64_t rows = 0;  // out_features
  int64_t cols = 0;  // in_features
  int blocksize = 64;
  const uint8_t* codes = nullptr;  // (rows*cols + 1) / 2 bytes

  // Exactly one of the two scale layouts is set.
  const float* absmax = nullptr;  // no double quantization: one fp32 per block

  const uint8_t* absmax_codes = nullptr;  // double quantization: one code per block
  const float* absmax_map = nullptr;      // the 256-entry signed dynamic map
  const float* nested_absmax = nullptr;   // one fp32 per nested block
  int nested_blocksize = 256;
  float nested_offset = 0.0f;             // mean subtracted before quantizing the absmax

  int64_t numel() const { return rows * cols; }
  int64_t blocks() const { return (numel() + blocksize - 1) / blocksize; }
  bool double_quantized() const { return absmax_codes != nullptr; }
  // fp32 absmax of block i, as bitsandbytes dequantizes it:
  // dynamic_map[code] * nested_absmax[i / nested_blocksize] + offset.
  float block_absmax(int64_t i) const {
    if (!double_quantized()) return absmax[i];
    return absmax_map[absmax_codes[i]] * nested_absmax[i / nested_blocksize] + nested_offset;
  }
};

}  // namespace ps
