// One row of softmax cross-entropy, max-subtracted in fp32:
//   loss = log(sum_j exp(x_j - m)) + m - x_target,   m = max_j x_j
// with the sum of exponentials added in float lanes over chunks and the
// chunks in double (V reaches 152k). If d is given it is overwritten with
// grad_scale * (softmax - onehot); d may be x itself (x_target is read first).
// Compiled into cross_entropy.cpp and avx2/cross_entropy_avx2.cpp; all `static`.
#pragma once

#include <math.h>  // log: a C function, nothing inline to share across ISAs

#include <cstddef>

#include "vec_math.h"

namespace ps {

constexpr int kCeChunk = 1024;

static inline double cross_entropy_row(const float* x, int V, int target, float grad_scale,
                                       float* d) {
  const float x_target = x[target];
  const float m = vm_max(x, static_cast<size_t>(V));
  double sum = 0.0;
  float tmp[kCeChunk];
  for (int c0 = 0; c0 < V; c0 += kCeChunk) {
    const int len = V - c0 < kCeChunk ? V - c0 : kCeChunk;
    float* e = d ? d + c0 : tmp;
    vm_exp_shifted(x + c0, m, e, static_cast<size_t>(len));
    sum += vm_sum(e, static_cast<size_t>(len));
  }
  if (d) {
    const float k = static_cast<float>(grad_scale / sum);
    for (int j = 0; j < V; ++j) d[j] *= k;
    d[target] -= grad_scale;
  }
  return log(sum) + static_cast<double>(m) - static_cast<double>(x_target);
}

double cross_entropy_row_avx2(const float* x, int V, int target, float grad_scale, float* d);

}  // namespace ps
