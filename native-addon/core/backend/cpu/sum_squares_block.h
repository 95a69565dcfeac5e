// The unit of the CPU's sums of squares (sum_squares, sum_squares_many): a
// fixed block of 16384 values summed in 8 double lanes, then the lanes and
// the tail in order. Blocks are summed in order by the callers, so a result
// depends only on the data, never on the thread count.
#pragma once

#include <cstddef>

namespace ps {

constexpr size_t kSumSquaresBlock = 16384;

inline double block_sum_squares(const float* xb, size_t len) {
  constexpr int kLanes = 8;
  double s[kLanes] = {};
  const size_t nv = len - len % kLanes;
  for (size_t i = 0; i < nv; i += kLanes)
    for (int l = 0; l < kLanes; ++l) s[l] += static_cast<double>(xb[i + l]) * xb[i + l];
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += s[l];
  for (size_t i = nv; i < len; ++i) total += static_cast<double>(xb[i]) * xb[i];
  return total;
}

}  // namespace ps
