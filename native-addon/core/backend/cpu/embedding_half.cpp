// Embedding lookup in a 16-bit table (QLoRA keeps the embedding as the
// checkpoint stores it): one call for all rows, each row widened exactly
// with model/half.h, the conversion half_to_float uses. The engine used to
// widen row by row through half_to_float with host ids: one call per token,
// which on a device is one launch per token.
#include <string>

#include "cpu_backend.h"
#include "error.h"
#include "model/half.h"
#include "parallel_range.h"

namespace ps {

void CpuBackend::embedding_forward_half(const int32_t* ids, int rows, const uint16_t* table, bool bf16,
                                        int table_rows, int D, float* out) {
  if (rows <= 0 || D <= 0) return;
  for (int r = 0; r < rows; ++r)
    if (ids[r] < 0 || ids[r] >= table_rows)
      throw Error("embedding_forward_half: token id " + std::to_string(ids[r]) + " at row " + std::to_string(r) +
                  " is outside the table [0, " + std::to_string(table_rows) + ")");
  const size_t min_rows = kElementChunk / static_cast<size_t>(D) + 1;
  parallel_range(*pool_, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const uint16_t* src = table + static_cast<size_t>(ids[r]) * D;
      float* dst = out + r * D;
      if (bf16) {
        for (int i = 0; i < D; ++i) dst[i] = bf16_to_f32(src[i]);
      } else {
        for (int i = 0; i < D; ++i) dst[i] = f16_to_f32(src[i]);
      }
    }
  });
}

}  // namespace ps
