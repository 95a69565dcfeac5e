// Sums of squares of many tensors in one call (the global gradient norm over
// every trainable tensor: hundreds under LoRA). Each tensor is cut into the
// same fixed 16384-value blocks as sum_squares (optimizer.cpp), each block
// summed in the same 8 double lanes, and a tensor's blocks are added in
// order: out[i] is sum_squares(xs[i], ns[i]) bit for bit (test_sync_ops
// checks it), for any thread count. The difference is the scheduling: the
// blocks of ALL tensors are one parallel loop, not one hand-off per tensor.
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "error.h"
#include "parallel_range.h"

namespace ps {

namespace {

constexpr size_t kBlock = 16384;  // sum_squares' block
constexpr int kLanes = 8;         // sum_squares' lanes

// The sum of squares of one block, exactly as sum_squares computes it.
double block_sum_squares(const float* xb, size_t len) {
  double s[kLanes] = {};
  const size_t nv = len - len % kLanes;
  for (size_t i = 0; i < nv; i += kLanes)
    for (int l = 0; l < kLanes; ++l) s[l] += static_cast<double>(xb[i + l]) * xb[i + l];
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += s[l];
  for (size_t i = nv; i < len; ++i) total += static_cast<double>(xb[i]) * xb[i];
  return total;
}

}  // namespace

void CpuBackend::sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) {
  if (count < 0) throw Error("sum_squares_many: count must be >= 0, got " + std::to_string(count));
  // first[i]: index of tensor i's first block in the flat list of all blocks.
  std::vector<size_t> first(static_cast<size_t>(count) + 1, 0);
  for (int i = 0; i < count; ++i) first[i + 1] = first[i] + (ns[i] + kBlock - 1) / kBlock;
  const size_t blocks = first[count];
  std::vector<double> part(blocks, 0.0);
  parallel_range(*pool_, blocks, 1, [&](size_t b0, size_t b1) {
    int t = 0;  // the tensor of block b0 (a linear walk: count is small next to the blocks' work)
    while (first[t + 1] <= b0) ++t;
    for (size_t b = b0; b < b1; ++b) {
      while (first[t + 1] <= b) ++t;
      const size_t blk = b - first[t];
      const size_t len = blk + 1 == first[t + 1] - first[t] ? ns[t] - blk * kBlock : kBlock;
      part[b] = block_sum_squares(xs[t] + blk * kBlock, len);
    }
  });
  for (int i = 0; i < count; ++i) {
    double sum = 0.0;
    for (size_t b = first[i]; b < first[i + 1]; ++b) sum += part[b];
    out[i] = sum;
  }
}

}  // namespace ps
