#include "quant/nf4_tables.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace ps {

const float* nf4_code_table() {
  // bitsandbytes' NF4 values (../shared/reference/nf4.md), as fp32 literals.
  static const float table[16] = {
      -1.0f,
      -0.6961928009986877f,
      -0.5250730514526367f,
      -0.39491748809814453f,
      -0.28444138169288635f,
      -0.18477343022823334f,
      -0.09105003625154495f,
      0.0f,
      0.07958029955625534f,
      0.16093020141124725f,
      0.24611230194568634f,
      0.33791524171829224f,
      0.44070982933044434f,
      0.5626170039176941f,
      0.7229568362236023f,
      1.0f,
  };
  return table;
}

namespace {

// torch.linspace(start, end, steps, dtype=float32): the step is computed in
// fp32; the first half counts up from start, the second half down from end
// (so both ends are exact), each point ONE fused multiply-add
// (start + step*i, end - step*(steps-1-i)). The fused form is what the map
// bitsandbytes users get contains: the 256 values torch printed (published in
// several projects that embed the table) match it in every bit, while the
// unfused form differs in 42 entries by an ulp.
void linspace_f32(float start, float end, int steps, float* out) {
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i)
    out[i] = i < halfway ? std::fmaf(step, static_cast<float>(i), start)
                         : std::fmaf(-step, static_cast<float>(steps - i - 1), end);
}

std::array<float, 256> build_dynamic_map_signed() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
  // non_sign_bits = 7, so group i has 2^i + 1 boundaries; additional_items
  // = 2^(7-7) - 1 = 0 adds nothing; then 0 and 1.0. 2*(1+2+...+64) + 2 = 256.
  constexpr int kMaxExponentBits = 7;
  std::array<float, 256> map{};
  int n = 0;
  float boundaries[65];
  for (int i = 0; i < kMaxExponentBits; ++i) {
    const int items = (1 << i) + 1;
    linspace_f32(0.1f, 1.0f, items, boundaries);
    // 10 ** (i - 6) is a Python number; torch multiplies an fp32 tensor by it
    // in fp32 (the scalar is rounded to fp32 first).
    static const double kPowersOfTen[kMaxExponentBits] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
    const float scale = static_cast<float>(kPowersOfTen[i]);
    for (int k = 0; k + 1 < items; ++k) {
      const float mean = (boundaries[k] + boundaries[k + 1]) / 2.0f;
      map[n++] = scale * mean;
      map[n++] = -(scale * mean);  // (-s) * mean rounds to exactly -(s * mean)
    }
  }
  map[n++] = 0.0f;
  map[n++] = 1.0f;
  std::sort(map.begin(), map.begin() + n);
  return map;
}

}  // namespace

const float* dynamic_map_signed() {
  static const std::array<float, 256> map = build_dynamic_map_signed();
  return map.data();
}

}  // namespace ps
