// IEEE half and bfloat16 to fp32, bit-exact and portable (no F16C needed):
// checkpoints stored as F16/BF16 are widened once at load.
#pragma once

#include <cstdint>
#include <cstring>

#include "../host_device.h"

namespace ps {

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The fp32 bit pattern of an IEEE half (the CUDA backend's kernels use it too).
PS_HOST_DEVICE inline uint32_t f16_to_f32_bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {  // inf / nan
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {  // normal
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3FFu) << 13);
  }
  return bits;
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t bits = f16_to_f32_bits(h);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace ps
