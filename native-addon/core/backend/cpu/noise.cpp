// NEFTune's uniform noise on the CPU (backend.h add_uniform_noise): the
// symmetric uniform of dropout's counter-based hash, so the noise of element
// i depends only on (key, i).
#include "cpu_backend.h"
#include "dropout_mask.h"
#include "parallel_range.h"
#include "uniform_noise.h"

namespace ps {

void CpuBackend::add_uniform_noise(float* x, size_t n, float magnitude, uint64_t key) {
  if (n == 0 || magnitude == 0.0f) return;
  const DropoutKey k = dropout_key(key);
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) x[i] += magnitude * symmetric_uniform(dropout_u24(k, i));
  });
}

}  // namespace ps
