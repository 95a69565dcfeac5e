// SwiGLU activation of the Llama MLP, out = silu(gate) * up with
// silu(g) = g / (1 + exp(-g)) as torch computes it in fp32. Backward:
//   dgate += dout * up * s * (1 + g (1 - s)),  s = sigmoid(g)
//   dup   += dout * silu(g)
// Compiled into swiglu.cpp and avx2/swiglu_avx2.cpp; all `static`.
#pragma once

#include <cstddef>

#include "vec_math.h"

namespace ps {

static inline void swiglu_forward_span(const float* gate, const float* up, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + vm_exp(-g)) * up[i];
  }
}

static inline void swiglu_backward_span(const float* gate, const float* up, const float* dout,
                                        float* dgate, float* dup, size_t n) {
  if (dgate) {
    for (size_t i = 0; i < n; ++i) {
      const float g = gate[i];
      const float s = 1.0f / (1.0f + vm_exp(-g));
      dgate[i] += dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
    }
  }
  if (dup) {
    for (size_t i = 0; i < n; ++i) {
      const float g = gate[i];
      dup[i] += dout[i] * (g / (1.0f + vm_exp(-g)));
    }
  }
}

void swiglu_forward_span_avx2(const float* gate, const float* up, float* out, size_t n);
void swiglu_backward_span_avx2(const float* gate, const float* up, const float* dout,
                               float* dgate, float* dup, size_t n);

}  // namespace ps
