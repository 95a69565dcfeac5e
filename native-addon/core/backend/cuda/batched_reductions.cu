// Sums of squares of many tensors with one download (the global gradient
// norm: hundreds of tensors under LoRA, one round trip instead of one per
// tensor). Each tensor is cut into sum_squares' 16384-value blocks
// (optimizer.cu), each block reduced by 256 threads through the same
// cuda::block_sum tree, and a tensor's block sums are added in order from
// 0.0 as sum_squares does on the host: out[i] equals sum_squares(xs[i],
// ns[i]) bit for bit on this backend.
//
// The tensor list travels as kernel parameters, up to kGroup tensors per
// launch: no device copy of the pointer list, so no upload (a pageable
// upload waits for the queue too) and no cache to keep in step with the
// optimizer's list.
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

constexpr size_t kSumBlock = 16384;  // sum_squares' block (optimizer.cu)
constexpr int kSumThreads = 256;     // sum_squares' threads: the same reduction tree
constexpr int kGroup = 128;          // tensors per launch: 2.5 KiB of parameters (< 4 KiB)

struct TensorGroup {
  const float* x[kGroup];
  unsigned long long n[kGroup];
  unsigned first[kGroup + 1];  // first[t]: tensor t's first block in this launch's grid
  int count;
};

__global__ void __launch_bounds__(kSumThreads) group_sum_squares_kernel(const TensorGroup g, double* part) {
  __shared__ double red[32];
  const unsigned b = blockIdx.x;
  int lo = 0, hi = g.count - 1;  // the tensor t with first[t] <= b < first[t + 1]
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (g.first[mid] <= b) lo = mid; else hi = mid - 1;
  }
  const int t = lo;
  const size_t n = g.n[t];
  const float* x = g.x[t];
  const size_t b0 = static_cast<size_t>(b - g.first[t]) * kSumBlock;
  const size_t end = b0 + kSumBlock < n ? b0 + kSumBlock : n;
  double s = 0.0;
  for (size_t i = b0 + threadIdx.x; i < end; i += blockDim.x) s += static_cast<double>(x[i]) * x[i];
  s = cuda::block_sum(s, red);
  if (threadIdx.x == 0) part[b] = s;
}

// One thread per tensor: its block sums in order, as the host loop of sum_squares.
__global__ void group_finish_kernel(const TensorGroup g, const double* part, double* out) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= g.count) return;
  double sum = 0.0;
  for (unsigned b = g.first[t]; b < g.first[t + 1]; ++b) sum += part[b];
  out[t] = sum;
}

}  // namespace

void CudaBackend::sum_squares_many(const float* const* xs, const size_t* ns, int count, double* out) {
  if (count < 0) throw Error("sum_squares_many: count must be >= 0, got " + std::to_string(count));
  if (count == 0) return;
  // The groups and their block counts first, so one scratch holds the
  // per-tensor results and the largest group's block sums.
  std::vector<TensorGroup> groups;
  size_t most_blocks = 0;
  for (int g0 = 0; g0 < count; g0 += kGroup) {
    TensorGroup g;
    g.count = count - g0 < kGroup ? count - g0 : kGroup;
    size_t blocks = 0;
    for (int t = 0; t < g.count; ++t) {
      g.x[t] = xs[g0 + t];
      g.n[t] = ns[g0 + t];
      g.first[t] = static_cast<unsigned>(blocks);
      blocks += (ns[g0 + t] + kSumBlock - 1) / kSumBlock;
      if (blocks > 0x7fffffffu)
        throw Error("sum_squares_many: tensors " + std::to_string(g0) + ".." + std::to_string(g0 + t) +
                    " are too large for one launch (" + std::to_string(blocks) + " blocks)");
    }
    g.first[g.count] = static_cast<unsigned>(blocks);
    for (int t = g.count; t < kGroup; ++t) {  // unused slots: defined values
      g.x[t] = nullptr;
      g.n[t] = 0;
      g.first[t + 1] = g.first[g.count];
    }
    most_blocks = blocks > most_blocks ? blocks : most_blocks;
    groups.push_back(g);
  }
  double* results = static_cast<double*>(
      scratch(Scratch::Reduce, (static_cast<size_t>(count) + most_blocks) * sizeof(double)));
  double* part = results + count;
  // In stream order: a group's block sums are consumed before the next group overwrites them.
  for (size_t k = 0; k < groups.size(); ++k) {
    const TensorGroup& g = groups[k];
    const unsigned blocks = g.first[g.count];
    if (blocks > 0) {
      PS_LAUNCH(group_sum_squares_kernel, blocks, kSumThreads, 0, 0)(g, part);
      cuda::check_launch("sum_squares_many");
    }
    PS_LAUNCH(group_finish_kernel, 1, kGroup, 0, 0)(g, part, results + k * kGroup);
    cuda::check_launch("sum_squares_many (per-tensor sums)");
  }
  download(out, results, static_cast<size_t>(count) * sizeof(double));  // the one round trip
}

}  // namespace ps
