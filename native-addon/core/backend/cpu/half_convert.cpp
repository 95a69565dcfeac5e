// 16-bit to fp32 widening (bfloat16 or IEEE half), exact: every 16-bit value
// is representable in fp32. Used where a 16-bit tensor is needed whole in
// fp32 (WeightStore::read, and writable() for full fine-tuning); the
// embedding lookup (embedding_half.cpp) and the 16-bit GEMMs (block linears,
// lm_head) widen only what they read.
#include "cpu_backend.h"
#include "model/half.h"
#include "parallel_range.h"
#include "quant/bf16_round.h"

namespace ps {

void CpuBackend::half_to_float(const uint16_t* src, bool bf16, float* dst, size_t n) {
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    if (bf16) {
      for (size_t i = b; i < e; ++i) dst[i] = bf16_to_f32(src[i]);  // a shift: vectorises
    } else {
      for (size_t i = b; i < e; ++i) dst[i] = f16_to_f32(src[i]);
    }
  });
}

void CpuBackend::bf16_round(float* x, uint16_t* bits, size_t n) {
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const uint16_t h = f32_to_bf16(x[i]);
      x[i] = bf16_to_f32(h);
      if (bits) bits[i] = h;
    }
  });
}

}  // namespace ps
