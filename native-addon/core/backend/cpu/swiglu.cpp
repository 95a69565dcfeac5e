// SwiGLU on the CPU: elementwise, split over the pool; the arithmetic is in
// swiglu_kernels.h (an AVX2 build of it is used when the CPU has it).
#include "cpu_backend.h"
#include "parallel_range.h"
#include "swiglu_kernels.h"

namespace ps {

void CpuBackend::swiglu_forward(const float* gate, const float* up, float* out, size_t n) {
  auto span = swiglu_forward_span;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) span = swiglu_forward_span_avx2;
#endif
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    span(gate + b, up + b, out + b, e - b);
  });
}

void CpuBackend::swiglu_backward(const float* gate, const float* up, const float* dout,
                                 float* dgate, float* dup, size_t n) {
  if (!dgate && !dup) return;
  auto span = swiglu_backward_span;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) span = swiglu_backward_span_avx2;
#endif
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    span(gate + b, up + b, dout + b, dgate ? dgate + b : nullptr, dup ? dup + b : nullptr, e - b);
  });
}

}  // namespace ps
