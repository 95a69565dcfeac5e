// The SwiGLU kernels compiled with AVX2/FMA; swiglu.cpp calls them only after
// the run-time CPU check.
#include "backend/cpu/swiglu_kernels.h"

namespace ps {

void swiglu_forward_span_avx2(const float* gate, const float* up, float* out, size_t n) {
  swiglu_forward_span(gate, up, out, n);
}

void swiglu_backward_span_avx2(const float* gate, const float* up, const float* dout,
                               float* dgate, float* dup, size_t n) {
  swiglu_backward_span(gate, up, dout, dgate, dup, n);
}

}  // namespace ps
