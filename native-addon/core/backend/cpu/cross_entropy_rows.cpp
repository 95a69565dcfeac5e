// Cross-entropy per row into a backend buffer (Backend::cross_entropy_rows):
// the same rows, the same row kernel and the same checks as cross_entropy
// (cross_entropy.cpp), but each row's double loss is written to loss[r]
// instead of being summed here, so a device backend need not hand a value
// back per loss chunk. Adding loss[0..rows) in order from 0.0 gives
// cross_entropy's return value bit for bit (test_sync_ops checks it).
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

void CpuBackend::cross_entropy_rows(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                                    float* dlogits, double* loss) {
  if (rows <= 0) return;
  if (V <= 0) throw Error("cross_entropy: vocabulary size must be positive, got " + std::to_string(V));
  for (int r = 0; r < rows; ++r) {
    const int32_t t = targets[r];
    if (t != kIgnoreIndex && (t < 0 || t >= V))
      throw Error("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(r) +
                  " is outside the vocabulary [0, " + std::to_string(V) +
                  ") (labels must be token ids or -100)");
  }
  auto row_fn = cross_entropy_row;
#if defined(PS_HAVE_AVX2_KERNELS)
  if (use_avx2_) row_fn = cross_entropy_row_avx2;
#endif
  const size_t chunks = (static_cast<size_t>(V) + kCeChunk - 1) / kCeChunk;
  std::vector<float> chunk_max(chunks * threads());
  pool_->parallel_for(static_cast<size_t>(rows), [&](size_t r0, size_t r1, int thread) {
    float* cm = chunk_max.data() + chunks * thread;
    for (size_t r = r0; r < r1; ++r) {
      float* d = dlogits ? dlogits + r * V : nullptr;
      if (targets[r] == kIgnoreIndex) {
        if (d) std::memset(d, 0, sizeof(float) * V);
        loss[r] = 0.0;
        continue;
      }
      loss[r] = row_fn(logits + r * V, V, targets[r], grad_scale, d, cm);
    }
  });
}

}  // namespace ps
