// One row of softmax cross-entropy, max-subtracted in fp32:
//   loss = log(sum_j exp(x_j - m)) + m - x_target,   m = max_j x_j
// in one pass over the row (it comes from memory once): chunks of kCeChunk
// logits are exponentiated against their own max, and the chunk sums are
// combined in double against the running max (V reaches 152k). If d is given
// it receives exp(x - m_chunk) in that pass and is then scaled in place to
// grad_scale * (softmax - onehot); d may be x itself (x_target is read
// first). chunk_max: scratch of ceil(V / kCeChunk) floats.
// Compiled into cross_entropy.cpp and avx2/cross_entropy_avx2.cpp; all `static`.
#pragma once

#include <math.h>  // log, exp: C functions, nothing inline to share across ISAs

#include <cstddef>

#include "vec_math.h"

namespace ps {

constexpr int kCeChunk = 1024;

static inline double cross_entropy_row(const float* x, int V, int target, float grad_scale,
                                       float* d, float* chunk_max) {
  const float x_target = x[target];
  float m = -INFINITY;  // running max
  double sum = 0.0;     // sum of exp(x - m) so far
  float tmp[kCeChunk];
  for (int c0 = 0, c = 0; c0 < V; c0 += kCeChunk, ++c) {
    const size_t len = static_cast<size_t>(V - c0 < kCeChunk ? V - c0 : kCeChunk);
    const float mc = vm_max(x + c0, len);
    chunk_max[c] = mc;
    float* e = d ? d + c0 : tmp;
    if (mc == -INFINITY) {  // nothing but -inf here: contributes 0
      for (size_t j = 0; j < len; ++j) e[j] = 0.0f;
      continue;
    }
    vm_exp_shifted(x + c0, mc, e, len);
    const double sc = vm_sum(e, len);
    if (mc > m) {
      sum = (m == -INFINITY ? 0.0 : sum * exp(static_cast<double>(m) - mc)) + sc;
      m = mc;
    } else {
      sum += sc * exp(static_cast<double>(mc) - m);
    }
  }
  if (d) {
    for (int c0 = 0, c = 0; c0 < V; c0 += kCeChunk, ++c) {
      const int len = V - c0 < kCeChunk ? V - c0 : kCeChunk;
      const float k = chunk_max[c] == -INFINITY
                          ? 0.0f
                          : static_cast<float>(grad_scale * exp(static_cast<double>(chunk_max[c]) - m) / sum);
      float* dc = d + c0;
      for (int j = 0; j < len; ++j) dc[j] *= k;
    }
    d[target] -= grad_scale;
  }
  return log(sum) + static_cast<double>(m) - static_cast<double>(x_target);
}

double cross_entropy_row_avx2(const float* x, int V, int target, float grad_scale, float* d,
                              float* chunk_max);

}  // namespace ps
