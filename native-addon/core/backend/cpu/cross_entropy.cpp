// Token-level cross-entropy over a block of rows (the loss head calls it per
// chunk of rows so the [rows, V] logits stay small). Rows are independent:
// threads split them, each row's loss lands in its own slot, and the slots
// are added in row order, so the sum does not depend on the thread count.
#include <cstring>
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "cross_entropy_kernels.h"
#include "error.h"

namespace ps {

namespace {
constexpr int32_t kIgnoreIndex = -100;  // torch's ignore_index
}

double CpuBackend::cross_entropy(const float* logits, const int32_t* targets, int rows, int V,
                                 float grad_scale, float* dlogits, int* count) {
  if (count) *count = 0;
  if (rows <= 0) return 0.0;
  if (V <= 0) throw Error("cross_entropy: vocabulary size must be positive, got " + std::to_string(V));
  int counted = 0;
  for (int r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    if (t == kIgnoreIndex) continue;
    if (t < 0 || t >= V)
      throw Error("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) +
                  " is outside the vocabulary [0, " + std::to_string(V) +
                  ") (labels must be token ids or -100)");
    ++counted;
  }

  auto row_fn = cross_entropy_row;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) row_fn = cross_entropy_row_avx2;
#endif
  std::vector<double> loss(static_cast<size_t>(rows), 0.0);
  const size_t chunks = (static_cast<size_t>(V) + kCeChunk - 1) / kCeChunk;
  std::vector<float> chunk_max(chunks * threads());
  pool_->parallel_for(static_cast<size_t>(rows), [&](size_t r0, size_t r1, int thread) {
    float* cm = chunk_max.data() + chunks * thread;
    for (size_t r = r0; r < r1; ++r) {
      const float* x = logits + r * V;
      float* d = dlogits ? dlogits + r * V : nullptr;
      if (targets[r] == kIgnoreIndex) {
        if (d) std::memset(d, 0, sizeof(float) * V);
        continue;
      }
      loss[r] = row_fn(x, V, targets[r], grad_scale, d, cm);
    }
  });
  double sum = 0.0;
  for (double l : loss) sum += l;
  if (count) *count = counted;
  return sum;
}

}  // namespace ps
