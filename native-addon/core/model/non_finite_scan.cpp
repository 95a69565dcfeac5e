#include "model/non_finite_scan.h"

#include <algorithm>

#include "error.h"

namespace ps {

NonFiniteScan::NonFiniteScan(Backend& backend, size_t chunk_values) : backend_(backend), chunk_(chunk_values) {
  if (chunk_ == 0) throw Error("NonFiniteScan: the chunk must hold at least one value");
}

float* NonFiniteScan::scratch(size_t n) {
  if (scratch_.size() < n) scratch_.resize(n);
  return scratch_.data();
}

NonFiniteCount NonFiniteScan::weight(const WeightStore& store, const WeightTensor& w) {
  const bool host = backend_.host_memory();
  if (host && w.data && !w.is_nf4()) return count_non_finite(w.data, w.numel);
  if (host && w.half && !w.is_nf4()) return count_non_finite_half(w.half, w.numel, w.half_bf16);
  // 4-bit (dequantized) or device memory: chunk by chunk.
  NonFiniteCount c;
  for (size_t first = 0; first < w.numel;) {
    const size_t k = std::min(chunk_, w.numel - first);
    float* buf = scratch(k);
    store.read_range(w.name, first, k, buf);
    c += count_non_finite(buf, k);
    ++chunks_;
    first += k;
  }
  return c;
}

NonFiniteCount NonFiniteScan::backend_floats(const float* x, size_t n) {
  if (backend_.host_memory()) return count_non_finite(x, n);
  NonFiniteCount c;
  for (size_t first = 0; first < n;) {
    const size_t k = std::min(chunk_, n - first);
    float* buf = scratch(k);
    backend_.download(buf, x + first, k * sizeof(float));
    c += count_non_finite(buf, k);
    ++chunks_;
    first += k;
  }
  return c;
}

}  // namespace ps
