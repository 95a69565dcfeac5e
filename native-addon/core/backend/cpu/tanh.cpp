// tanh and its backward, element by element in fp32 (the prefix-tuning
// MLP's activation). The expressions are those the engine used on the host
// before these ops existed (std::tanh on floats; dx *= 1 - y * y), so the
// CPU results did not change by a bit when they moved here.
#include <cmath>

#include "cpu_backend.h"
#include "parallel_range.h"

namespace ps {

void CpuBackend::tanh_forward(float* x, size_t n) {
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] = std::tanh(x[i]);
  });
}

void CpuBackend::tanh_backward(const float* y, float* dx, size_t n) {
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) dx[i] *= 1.0f - y[i] * y[i];
  });
}

}  // namespace ps
