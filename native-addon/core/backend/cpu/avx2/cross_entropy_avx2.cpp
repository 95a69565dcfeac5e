// The cross-entropy row kernel compiled with AVX2/FMA; cross_entropy.cpp calls
// it only after the run-time CPU check.
#include "backend/cpu/cross_entropy_kernels.h"

namespace ps {

double cross_entropy_row_avx2(const float* x, int V, int target, float grad_scale, float* d,
                              float* chunk_max) {
  return cross_entropy_row(x, V, target, grad_scale, d, chunk_max);
}

}  // namespace ps
