// The cross-entropy row kernel compiled with AVX2/FMA; cross_entropy.cpp calls
// it only after the run-time CPU check.
#include "backend/cpu/cross_entropy_kernels.h"

namespace ps {

double cross_entropy_row_avx2(const float* x, int V, int target, float grad_scale, float* d) {
  return cross_entropy_row(x, V, target, grad_scale, d);
}

}  // namespace ps
