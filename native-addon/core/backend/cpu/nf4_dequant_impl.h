// Dequantizing a run of consecutive NF4 elements (flat index i0 .. i0+len of
// the [rows, cols] weight) into fp32: the one primitive every NF4 kernel
// builds on. A run may start on an odd element (low nibble) and cross block
// boundaries (blocks cross row ends when cols % blocksize != 0); it is cut at
// block boundaries so each piece has one scale, and each piece is handed to
// a 16-values-per-8-bytes body (portable loop or AVX2) plus scalar edges.
//
// Everything here is `static`: the portable and the AVX2 translation units
// each get their own copy (an AVX2-compiled copy must never be linked into
// portable code). The files that include it are compiled with
// -ffp-contract=off, so the scale is `map * nested` rounded, THEN `+ offset`
// rounded, as bitsandbytes computes it.
#pragma once

#include <cstdint>

#include "quant/nf4_weight.h"

namespace ps {
namespace nf4k {

// fp32 absmax of block b (Nf4Weight::block_absmax with the rounding spelled out).
static inline float block_scale(const Nf4Weight& W, int64_t b) {
  if (!W.double_quantized()) return W.absmax[b];
  const float scaled = W.absmax_map[W.absmax_codes[b]] * W.nested_absmax[b / W.nested_blocksize];
  return scaled + W.nested_offset;
}

// out[0 .. count) = fp32 absmax of blocks b0 .. b0+count, rounded as in
// block_scale; the nested index is stepped, not divided, per block.
static inline void block_scales(const Nf4Weight& W, int64_t b0, int64_t count, float* out) {
  if (!W.double_quantized()) {
    for (int64_t j = 0; j < count; ++j) out[j] = W.absmax[b0 + j];
    return;
  }
  const int64_t nbs = W.nested_blocksize;
  int64_t nested = b0 / nbs, left = nbs - b0 % nbs;
  for (int64_t j = 0; j < count; ++j) {
    const float scaled = W.absmax_map[W.absmax_codes[b0 + j]] * W.nested_absmax[nested];
    out[j] = scaled + W.nested_offset;
    if (--left == 0) ++nested, left = nbs;
  }
}

static inline int code_at(const uint8_t* codes, int64_t i) {
  const uint8_t byte = codes[i >> 1];
  return (i & 1) ? (byte & 0x0F) : (byte >> 4);
}

// body16(bytes, scale, out): 8 packed bytes -> 16 floats, out[2j] from the
// high nibble of bytes[j], out[2j+1] from the low one, times scale.
// No division inside the loop: the block and nested-block indices are
// stepped (a 64-bit division per 64-value block cost more than the block's
// dequantization).
template <typename Body16>
static inline void dequant_run(const Nf4Weight& W, const float* table, int64_t i, int64_t len,
                               float* out, Body16&& body16) {
  const int64_t end = i + len;
  const int64_t bs = W.blocksize;
  int64_t b = i / bs;
  int64_t block_end = (b + 1) * bs;
  const bool dq = W.double_quantized();
  const int64_t nbs = dq ? W.nested_blocksize : 1;
  int64_t nested = b / nbs, nested_left = nbs - b % nbs;  // blocks left in this nested block
  while (i < end) {
    const int64_t stop = end < block_end ? end : block_end;
    float s;
    if (dq) {
      const float scaled = W.absmax_map[W.absmax_codes[b]] * W.nested_absmax[nested];
      s = scaled + W.nested_offset;
    } else {
      s = W.absmax[b];
    }
    if ((i & 1) && i < stop) *out++ = table[code_at(W.codes, i)] * s, ++i;
    for (; i + 16 <= stop; i += 16, out += 16) body16(W.codes + (i >> 1), s, out);
    for (; i < stop; ++i) *out++ = table[code_at(W.codes, i)] * s;
    ++b;
    block_end += bs;
    if (--nested_left == 0) ++nested, nested_left = nbs;
  }
}

}  // namespace nf4k
}  // namespace ps
