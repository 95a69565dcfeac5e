// The dropout mask kernel compiled with AVX2 (native 32-bit multiplies);
// elementwise.cpp calls it only after the run-time CPU check.
#include "backend/cpu/dropout_mask.h"

namespace ps {

void dropout_span_avx2(DropoutKey k, uint32_t threshold, float scale, const float* in, float* out,
                       size_t b, size_t e, bool accumulate) {
  if (accumulate) dropout_span<true>(k, threshold, scale, in, out, b, e);
  else dropout_span<false>(k, threshold, scale, in, out, b, e);
}

}  // namespace ps
