// Token-level cross-entropy on the CUDA backend, chunked over the vocabulary
// as the CPU backend does (backend/cpu/cross_entropy_kernels.h): one block
// per row walks the row in chunks of 1024 logits, each exponentiated against
// its own max; the chunk sums are combined in double against the running
// max. Only the chunk maxima are kept ([rows, ceil(V/1024)] floats of
// scratch), never a softmax row beyond the chunk in registers. With dlogits
// the first pass writes exp(x - chunk max) (dlogits may alias logits:
// x_target is read first) and a second pass scales it to
// grad_scale * (softmax - onehot).
//
// cross_entropy_rows writes each row's loss (double) to device memory, so a
// loss chunk costs no round trip (the loss head downloads all rows once per
// pass); its targets are not downloaded for checking: a target outside
// [0, V) other than -100 zeroes its row and goes to the status word, which
// the next synchronising call turns into an error. cross_entropy (the sum,
// for op-level callers) checks the targets on the host with the CPU's
// messages, runs the same kernel and sums the rows in order, as the CPU.
#include <cmath>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

constexpr int kCeChunk = 1024;  // the CPU's kCeChunk
constexpr int kCeThreads = 256;
constexpr int kPerThread = kCeChunk / kCeThreads;
constexpr int32_t kIgnoreIndex = -100;

__global__ void __launch_bounds__(kCeThreads)
    cross_entropy_rows_kernel(const float* logits, const int32_t* targets, int V, float grad_scale, float* dlogits,
                              float* chunk_max, double* loss, int* status) {
  __shared__ float red[32];
  const size_t row = blockIdx.x;
  const int chunks = (V + kCeChunk - 1) / kCeChunk;
  const float* x = logits + row * V;
  float* d = dlogits ? dlogits + row * V : nullptr;
  float* cm = chunk_max + row * chunks;
  const int32_t target = targets[row];
  if (target == kIgnoreIndex || target < 0 || target >= V) {
    if (target != kIgnoreIndex && threadIdx.x == 0)
      cuda::report_bad_index(status, cuda::kStatusCrossEntropyTarget, static_cast<int>(row), target);
    if (d)
      for (int j = threadIdx.x; j < V; j += blockDim.x) d[j] = 0.0f;
    if (threadIdx.x == 0) loss[row] = 0.0;
    return;
  }
  const float x_target = x[target];
  __syncthreads();  // every thread has read x_target before d (maybe == x) is written

  float m = -INFINITY;  // running max (the same in every thread)
  double sum = 0.0;
  for (int c = 0; c < chunks; ++c) {
    const int c0 = c * kCeChunk;
    float v[kPerThread];
    float local_max = -INFINITY;
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const int j = c0 + threadIdx.x + k * kCeThreads;
      v[k] = j < V ? x[j] : -INFINITY;
      local_max = fmaxf(local_max, v[k]);
    }
    const float mc = cuda::block_max(local_max, red);
    if (threadIdx.x == 0) cm[c] = mc;
    if (mc == -INFINITY) {  // nothing but -inf here: contributes 0
      if (d)
#pragma unroll
        for (int k = 0; k < kPerThread; ++k) {
          const int j = c0 + threadIdx.x + k * kCeThreads;
          if (j < V) d[j] = 0.0f;
        }
      continue;
    }
    float local_sum = 0.0f;
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const int j = c0 + threadIdx.x + k * kCeThreads;
      if (j >= V) continue;
      const float e = expf(v[k] - mc);
      if (d) d[j] = e;
      local_sum += e;
    }
    const double sc = static_cast<double>(cuda::block_sum(local_sum, red));
    if (mc > m) {
      sum = (m == -INFINITY ? 0.0 : sum * exp(static_cast<double>(m) - mc)) + sc;
      m = mc;
    } else {
      sum += sc * exp(static_cast<double>(mc) - m);
    }
  }
  if (threadIdx.x == 0) loss[row] = log(sum) + static_cast<double>(m) - static_cast<double>(x_target);
  if (!d) return;
  __syncthreads();  // cm[] written by thread 0 is visible to the block
  for (int c = 0; c < chunks; ++c) {
    const int c0 = c * kCeChunk, len = V - c0 < kCeChunk ? V - c0 : kCeChunk;
    const float mc = cm[c];
    const float k = mc == -INFINITY ? 0.0f : static_cast<float>(grad_scale * exp(static_cast<double>(mc) - m) / sum);
    for (int j = threadIdx.x; j < len; j += blockDim.x) d[c0 + j] *= k;
  }
  __syncthreads();
  if (threadIdx.x == 0) d[target] -= grad_scale;
}

}  // namespace

void CudaBackend::cross_entropy_rows(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                                     float* dlogits, double* loss) {
  if (rows <= 0) return;
  if (V <= 0) throw Error("cross_entropy: vocabulary size must be positive, got " + std::to_string(V));
  const size_t chunks = (static_cast<size_t>(V) + kCeChunk - 1) / kCeChunk;
  float* chunk_max = static_cast<float*>(scratch(Scratch::Loss, static_cast<size_t>(rows) * chunks * sizeof(float)));
  PS_LAUNCH(cross_entropy_rows_kernel, rows, kCeThreads, 0, 0)(logits, targets, V, grad_scale, dlogits, chunk_max,
                                                               loss, status_);
  cuda::check_launch("cross_entropy_rows");
}

double CudaBackend::cross_entropy(const float* logits, const int32_t* targets, int rows, int V, float grad_scale,
                                  float* dlogits, int* count) {
  if (count) *count = 0;
  if (rows <= 0) return 0.0;
  if (V <= 0) throw Error("cross_entropy: vocabulary size must be positive, got " + std::to_string(V));
  std::vector<int32_t> t(static_cast<size_t>(rows));
  download(t.data(), targets, t.size() * sizeof(int32_t));
  int counted = 0;
  for (int r = 0; r < rows; ++r) {
    if (t[r] == kIgnoreIndex) continue;
    if (t[r] < 0 || t[r] >= V)
      throw Error("cross_entropy: target " + std::to_string(t[r]) + " at row " + std::to_string(r) +
                  " is outside the vocabulary [0, " + std::to_string(V) + ") (labels must be token ids or -100)");
    ++counted;
  }
  // The Loss slot holds cross_entropy_rows' chunk maxima: the rows' losses go to Reduce.
  double* loss = static_cast<double*>(scratch(Scratch::Reduce, static_cast<size_t>(rows) * sizeof(double)));
  cross_entropy_rows(logits, targets, rows, V, grad_scale, dlogits, loss);
  std::vector<double> host(static_cast<size_t>(rows));
  download(host.data(), loss, host.size() * sizeof(double));
  double sum = 0.0;
  for (double l : host) sum += l;
  if (count) *count = counted;
  return sum;
}

}  // namespace ps
