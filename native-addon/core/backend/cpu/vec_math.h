// Small math kernels that vectorise at any ISA level: an exp with no library
// call and no float selects, sums split into fixed lanes (the compiler may not
// reorder a float sum by itself, so the lanes are explicit), and a max with
// SSE2/AVX2 intrinsics (a float max reduction is never auto-vectorised).
//
// Everything here is `static inline`: the header is also compiled into the
// AVX2 translation units, and internal linkage keeps an AVX2 copy of a helper
// from ever being picked by the linker for the portable code.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#define VM_AVX2 1
#elif defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define VM_SSE2 1
#endif

namespace ps {

// Bit casts, and selects done on integers: under GCC's default
// -ftrapping-math a select on a float comparison (other than a plain min/max
// feeding a store) keeps a loop from vectorising; integer compares do not trap.
static inline int32_t vm_bits(float x) {
  int32_t i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}
static inline float vm_float(int32_t i) {
  float x;
  std::memcpy(&x, &i, sizeof x);
  return x;
}
// An int32 that orders like the float it came from (for -0 < +0 and NaN aside).
static inline int32_t vm_order_key(int32_t bits) { return bits ^ ((bits >> 31) & 0x7fffffff); }
// keep ? x : other, keep being 0 or 1.
static inline float vm_select(int32_t keep, float x, float other) {
  int32_t m = -keep;
  return vm_float((vm_bits(x) & m) | (vm_bits(other) & ~m));
}

// exp(x) for float: within 1.7e-7 relative (2 ulp) of the true value for x
// in [-87.3, 88.3], 1e-6 up to 88.72. x = n ln2 + r with |r| <= ln2/2, exp(r)
// by its Taylor series to r^7 (the r^8/8! remainder is below 1e-8 relative),
// 2^n built in the exponent bits. x below about -87.7 gives exactly 0 (so
// exp(-inf) = 0 and masked scores drop out exactly); x above 88.72 saturates
// at 3.4e38 instead of inf; NaN gives NaN.
static inline float vm_exp(float x) {
  const int32_t xb = vm_bits(x);
  // Clamp x to [-100, 88.72] through the order key (the bound -100 keeps r
  // small for huge negatives, whose result is 0 anyway).
  const int32_t key_lo = vm_order_key(vm_bits(-100.0f)), key_hi = vm_order_key(vm_bits(88.72283f));
  int32_t key = vm_order_key(xb);
  key = key < key_lo ? key_lo : key;
  key = key > key_hi ? key_hi : key;
  const float xc = vm_float(vm_order_key(key));
  // n = round(xc / ln2) by adding and removing 1.5 * 2^23 (round-to-nearest).
  int32_t n = static_cast<int32_t>((xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f);
  n = n > 127 ? 127 : n;  // x in (88.38, 88.72]: keep 2^n finite, r grows to 0.7
  const float nf = static_cast<float>(n);
  // ln2 split in two so n * ln2_hi is exact (9 + 8 significant bits).
  const float r = (xc - nf * 0.693359375f) - nf * -2.12194440e-4f;
  n = n < -127 ? -127 : n;  // exponent field 0: 2^n is exactly 0
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t yb = vm_bits(p * vm_float((n + 127) << 23));
  const int32_t nan_mask = -static_cast<int32_t>((xb & 0x7fffffff) > 0x7f800000);
  return vm_float(yb | nan_mask);
}

// y[i] = exp(x[i] - shift)
static inline void vm_exp_shifted(const float* x, float shift, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = vm_exp(x[i] - shift);
}

constexpr int kVmLanes = 16;

// max of x (NaNs skipped). Written with intrinsics where there are some: GCC
// does not vectorise a float max reduction without -ffast-math.
static inline float vm_max(const float* x, size_t n) {
  size_t i = 0;
  float r = -INFINITY;
#if defined(VM_AVX2)
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
  for (int l = 0; l < 8; ++l) r = lanes[l] > r ? lanes[l] : r;
#elif defined(VM_SSE2)
  __m128 m0 = _mm_set1_ps(-INFINITY), m1 = m0;
  for (; i + 8 <= n; i += 8) {
    m0 = _mm_max_ps(_mm_loadu_ps(x + i), m0);
    m1 = _mm_max_ps(_mm_loadu_ps(x + i + 4), m1);
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_max_ps(m0, m1));
  for (int l = 0; l < 4; ++l) r = lanes[l] > r ? lanes[l] : r;
#endif
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

// Sum of x in float lanes (for short rows; long rows should add chunks of
// this into a double).
static inline float vm_sum(const float* x, size_t n) {
  float s[kVmLanes] = {};
  const size_t nv = n - n % kVmLanes;
  for (size_t i = 0; i < nv; i += kVmLanes)
    for (int l = 0; l < kVmLanes; ++l) s[l] += x[i + l];
  float r = 0.0f;
  for (int l = 0; l < kVmLanes; ++l) r += s[l];
  for (size_t i = nv; i < n; ++i) r += x[i];
  return r;
}

// sum x[i] * y[i] in float lanes
static inline float vm_dot(const float* x, const float* y, size_t n) {
  float s[kVmLanes] = {};
  const size_t nv = n - n % kVmLanes;
  for (size_t i = 0; i < nv; i += kVmLanes)
    for (int l = 0; l < kVmLanes; ++l) s[l] += x[i + l] * y[i + l];
  float r = 0.0f;
  for (int l = 0; l < kVmLanes; ++l) r += s[l];
  for (size_t i = nv; i < n; ++i) r += x[i] * y[i];
  return r;
}

}  // namespace ps
