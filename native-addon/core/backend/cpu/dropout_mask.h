// The dropout mask as a pure function of (key, element index), so forward
// and backward (and any backend) rebuild the same mask without storing it,
// whatever the thread count.
//
// u24(key, i): the key is spread by splitmix64's mixer into two 32-bit words
// k0, k1; the element index goes through two rounds of murmur3's 32-bit
// finalizer, keyed by k0 and k1 (each round is a bijection, so distinct
// indices below 2^32 get distinct hashes); the top 24 bits are the uniform
// u24 / 2^24 in [0, 1). Element i is kept iff that uniform >= p. Everything
// is 32-bit integer arithmetic, so the loops over it vectorise.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../host_device.h"

namespace ps {

struct DropoutKey {
  uint32_t k0, k1;
};

PS_HOST_DEVICE static inline DropoutKey dropout_key(uint64_t key) {
  uint64_t z = key;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return {static_cast<uint32_t>(z), static_cast<uint32_t>(z >> 32)};
}

PS_HOST_DEVICE static inline uint32_t dropout_fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

PS_HOST_DEVICE static inline uint32_t dropout_u24(DropoutKey k, uint64_t i) {
  const uint32_t h = dropout_fmix32(static_cast<uint32_t>(i) ^ k.k0);
  return dropout_fmix32(h ^ k.k1 ^ static_cast<uint32_t>(i >> 32)) >> 8;
}

// Elements [b, e): out = in * (keep ? scale : 0), or out += that. `static`:
// compiled into elementwise.cpp and avx2/dropout_avx2.cpp. The index is split
// into its 32-bit halves (the high half is constant over 2^32 elements), so
// the inner loop runs on 32-bit lanes only.
template <bool kAccumulate>
static inline void dropout_span(DropoutKey k, uint32_t threshold, float scale, const float* in,
                                float* out, size_t b, size_t e) {
  int32_t scale_bits;
  std::memcpy(&scale_bits, &scale, sizeof scale_bits);
  while (b < e) {
    const uint64_t hi = static_cast<uint64_t>(b) >> 32;
    const size_t end = (hi + 1) << 32 < e ? static_cast<size_t>((hi + 1) << 32) : e;
    const uint32_t k0 = k.k0, k1 = k.k1 ^ static_cast<uint32_t>(hi);
    const uint32_t lo0 = static_cast<uint32_t>(b);
    const float* src = in + b;
    float* dst = out + b;
    const uint32_t count = static_cast<uint32_t>(end - b);
    for (uint32_t j = 0; j < count; ++j) {
      const uint32_t u24 = dropout_fmix32(dropout_fmix32((lo0 + j) ^ k0) ^ k1) >> 8;
      // 0 or scale, chosen on integers so the loop vectorises
      const int32_t keep = -static_cast<int32_t>(u24 >= threshold);
      const int32_t factor_bits = scale_bits & keep;
      float factor;
      std::memcpy(&factor, &factor_bits, sizeof factor);
      if (kAccumulate) dst[j] += src[j] * factor; else dst[j] = src[j] * factor;
    }
    b = end;
  }
}

void dropout_span_avx2(DropoutKey k, uint32_t threshold, float scale, const float* in, float* out,
                       size_t b, size_t e, bool accumulate);

// Smallest 24-bit value that is kept: uniform >= p  <=>  u24 >= ceil(p * 2^24).
static inline uint32_t dropout_threshold(float p) {
  return static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
}

}  // namespace ps
