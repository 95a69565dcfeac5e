// Sums of squares of many tensors in one call (the global gradient norm over
// every trainable tensor: hundreds under LoRA). Each tensor is cut into the
// same fixed blocks as sum_squares (optimizer.cpp, sum_squares_block.h), and
// a tensor's blocks are added in order: out[i] is sum_squares(xs[i], ns[i])
// bit for bit (test_sync_ops checks it), for any thread count. The difference is the scheduling: the
// blocks of ALL tensors are one parallel loop, not one hand-off per tensor.
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "error.h"
#include "parallel_range.h"
#include "sum_squares_block.h"

namespace ps {

void CpuBackend::sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) {
  if (count < 0) throw Error("sum_squares_many: count must be >= 0, got " + std::to_string(count));
  // first[i]: index of tensor i's first block in the flat list of all blocks.
  std::vector<size_t> first(static_cast<size_t>(count) + 1, 0);
  for (int i = 0; i < count; ++i) first[i + 1] = first[i] + (ns[i] + kSumSquaresBlock - 1) / kSumSquaresBlock;
  const size_t blocks = first[count];
  std::vector<double> part(blocks, 0.0);
  parallel_range(*pool_, blocks, 1, [&](size_t b0, size_t b1) {
    int t = 0;  // the tensor of block b0 (a linear walk: count is small next to the blocks' work)
    while (first[t + 1] <= b0) ++t;
    for (size_t b = b0; b < b1; ++b) {
      while (first[t + 1] <= b) ++t;
      const size_t blk = b - first[t];
      const bool last = blk + 1 == first[t + 1] - first[t];
      const size_t len = last ? ns[t] - blk * kSumSquaresBlock : kSumSquaresBlock;
      part[b] = block_sum_squares(xs[t] + blk * kSumSquaresBlock, len);
    }
  });
  for (int i = 0; i < count; ++i) {
    double sum = 0.0;
    for (size_t b = first[i]; b < first[i + 1]; ++b) sum += part[b];
    out[i] = sum;
  }
}

}  // namespace ps
