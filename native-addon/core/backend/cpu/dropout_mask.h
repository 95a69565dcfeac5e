// The dropout mask as a pure function of (key, element index), so forward
// and backward (and any backend) rebuild the same mask without storing it,
// whatever the thread count.
//
// uniform(key, i): splitmix64 seeded with mix(key) gives one 64-bit output per
// pair of elements (output number i/2); element i takes its top 24 bits when
// i is even and bits 8..31 when odd, as a multiple of 2^-24 in [0, 1).
// Element i is kept iff uniform(key, i) >= p.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace ps {

static inline uint64_t dropout_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// 24-bit uniforms of elements 2*pair and 2*pair + 1.
static inline void dropout_pair(uint64_t stream, uint64_t pair, uint32_t& even, uint32_t& odd) {
  const uint64_t h = dropout_mix64(stream + (pair + 1) * 0x9E3779B97F4A7C15ull);
  even = static_cast<uint32_t>(h >> 40);
  odd = static_cast<uint32_t>(h >> 8) & 0xFFFFFFu;
}

static inline uint64_t dropout_stream(uint64_t key) { return dropout_mix64(key); }

// Smallest 24-bit value that is kept: uniform >= p  <=>  u24 >= ceil(p * 2^24).
static inline uint32_t dropout_threshold(float p) {
  return static_cast<uint32_t>(std::ceil(static_cast<double>(p) * 16777216.0));
}

}  // namespace ps
