// Token embedding lookup and its gradient on the CUDA backend. A negative id
// is skipped and reported (see cuda_backend.h: the next synchronising call
// throws naming the row); ids past the table are the caller's to check, as
// on the CPU (the table's row count is not part of the op).
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void embedding_forward_kernel(const int32_t* ids, int rows, const float* table, int D, float* out,
                                         int* status) {
  const size_t n = static_cast<size_t>(rows) * D;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / D), c = static_cast<int>(i % D);
    const int32_t id = ids[r];
    if (id < 0) {
      if (c == 0) cuda::report_bad_index(status, cuda::kStatusEmbeddingForwardId, r, id);
      continue;
    }
    out[i] = table[static_cast<size_t>(id) * D + c];
  }
}

// Rows that share an id add into the same table row, so threads own columns
// and walk every row in order (as the CPU backend does): deterministic, the
// CPU's bits, no float atomics. Simple, not fast: one pass over dout per
// column block (fine for prompt tuning / full fine-tuning's embedding).
__global__ void embedding_backward_kernel(const int32_t* ids, int rows, const float* dout, int D, float* dtable,
                                          int* status) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= D) return;
  for (int r = 0; r < rows; ++r) {
    const int32_t id = ids[r];
    if (id < 0) {
      if (c == 0) cuda::report_bad_index(status, cuda::kStatusEmbeddingBackwardId, r, id);
      continue;
    }
    dtable[static_cast<size_t>(id) * D + c] += dout[static_cast<size_t>(r) * D + c];
  }
}

}  // namespace

void CudaBackend::embedding_forward(const int32_t* ids, int rows, const float* table, int D, float* out) {
  if (rows <= 0 || D <= 0) return;
  const size_t n = static_cast<size_t>(rows) * D;
  PS_LAUNCH(embedding_forward_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)
      (ids, rows, table, D, out, status_);
  cuda::check_launch("embedding_forward");
}

void CudaBackend::embedding_backward(const int32_t* ids, int rows, const float* dout, int D, float* dtable) {
  if (rows <= 0 || D <= 0 || !dtable) return;
  PS_LAUNCH(embedding_backward_kernel, cuda::blocks_for(D), cuda::kThreads, 0, 0)
      (ids, rows, dout, D, dtable, status_);
  cuda::check_launch("embedding_backward");
}

}  // namespace ps
