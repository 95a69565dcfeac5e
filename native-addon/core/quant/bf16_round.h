// fp32 -> bfloat16 with round-to-nearest-even, the rounding torch's
// .to(torch.bfloat16) and CUDA's __float2bfloat16_rn do. Written once for
// the host and the CUDA kernels (PS_HOST_DEVICE), on the bit pattern, so the
// GPU's bf16 GEMM and its tests round the same way.
#pragma once

#include <cstdint>
#include <cstring>

#include "../host_device.h"

namespace ps {

PS_HOST_DEVICE inline uint16_t bf16_bits_from_f32_bits(uint32_t bits) {
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)  // NaN: keep it a quiet NaN of the same sign
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Round half to even on the 16 bits that go: add 0x7FFF plus the lowest
  // kept bit; an overflow into the exponent is the correct rounding (up to inf).
  const uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bf16_bits_from_f32_bits(bits);
}

// f rounded to bf16 and widened back: the value a bf16 operand carries.
inline float round_to_bf16(float f) {
  const uint32_t bits = static_cast<uint32_t>(f32_to_bf16(f)) << 16;
  float r;
  std::memcpy(&r, &bits, 4);
  return r;
}

}  // namespace ps
