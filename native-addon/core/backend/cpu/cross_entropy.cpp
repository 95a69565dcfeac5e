// Token-level cross-entropy over a block of rows, summed: the rows' losses of
// cross_entropy_rows (cross_entropy_rows.cpp, what the loss head calls)
// added in row order, so the sum does not depend on the thread count.
#include <string>
#include <vector>

#include "cpu_backend.h"

namespace ps {

namespace {
constexpr int32_t kIgnoreIndex = -100;  // torch's ignore_index
}

double CpuBackend::cross_entropy(const float* logits, const int32_t* targets, int rows, int V,
                                 float grad_scale, float* dlogits, int* count) {
  if (count) *count = 0;
  if (rows <= 0) return 0.0;
  std::vector<double> loss(static_cast<size_t>(rows));
  cross_entropy_rows(logits, targets, rows, V, grad_scale, dlogits, loss.data());  // checks V and the targets
  double sum = 0.0;
  int counted = 0;
  for (int r = 0; r < rows; ++r) {
    sum += loss[static_cast<size_t>(r)];  // 0.0 for an ignored row
    if (targets[r] != kIgnoreIndex) ++counted;
  }
  if (count) *count = counted;
  return sum;
}

}  // namespace ps
