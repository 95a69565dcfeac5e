// The symmetric uniform of a 24-bit hash: v = (2 u + 1 - 2^24) / 2^24, the
// centres of 2^24 equal cells of (-1, 1). The numerator is an odd integer
// below 2^24 in magnitude and the scale a power of two, so v is exact in fp32
// and its distribution has mean exactly 0. Host and device (CUDA) share it.
#pragma once

#include <cstdint>

#include "../../host_device.h"

namespace ps {

PS_HOST_DEVICE static inline float symmetric_uniform(uint32_t u24) {
  return static_cast<float>(2 * static_cast<int32_t>(u24) + 1 - (1 << 24)) * (1.0f / 16777216.0f);
}

}  // namespace ps
