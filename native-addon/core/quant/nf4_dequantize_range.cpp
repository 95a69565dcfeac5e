#include "quant/nf4_dequantize_range.h"

#include <algorithm>
#include <string>

#include "error.h"
#include "quant/nf4_tables.h"

namespace ps {

void nf4_dequantize_range(const Nf4Weight& W, int64_t first, int64_t n, float* out) {
  const int64_t numel = W.numel();
  if (first < 0 || n < 0 || first > numel || n > numel - first)
    throw Error("nf4_dequantize_range: values [" + std::to_string(first) + ", " + std::to_string(first + n) +
                ") are not within the weight's " + std::to_string(numel));
  const float* table = nf4_code_table();
  const int64_t end = first + n;
  // Block by block: the block's absmax (a double-quantized one decoded through
  // its group's nested scale) is computed once and used for each of its values.
  for (int64_t i = first; i < end;) {
    const int64_t block = i / W.blocksize;
    const int64_t block_end = std::min(end, (block + 1) * W.blocksize);
    const float absmax = W.block_absmax(block);
    for (; i < block_end; ++i) {
      const uint8_t byte = W.codes[i >> 1];
      const int c = (i & 1) ? (byte & 0x0F) : (byte >> 4);
      out[i - first] = table[c] * absmax;
    }
  }
}

}  // namespace ps
