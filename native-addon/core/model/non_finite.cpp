#include "model/non_finite.h"

#include <cstring>

namespace ps {

NonFiniteCount count_non_finite(const float* x, size_t n) {
  NonFiniteCount c;
  for (size_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, sizeof b);
    if ((b & 0x7f800000u) != 0x7f800000u) continue;
    if (b & 0x007fffffu) ++c.nan;
    else ++c.inf;
  }
  return c;
}

NonFiniteCount count_non_finite_half(const uint16_t* x, size_t n, bool bf16) {
  const uint16_t exp_mask = bf16 ? 0x7f80 : 0x7c00, mant_mask = bf16 ? 0x007f : 0x03ff;
  NonFiniteCount c;
  for (size_t i = 0; i < n; ++i) {
    if ((x[i] & exp_mask) != exp_mask) continue;
    if (x[i] & mant_mask) ++c.nan;
    else ++c.inf;
  }
  return c;
}

}  // namespace ps
