// Embedding lookup in a 16-bit table on the device: one launch for all rows
// (the engine used to launch half_to_float once per token row). The
// widening is model/half.h's, bit-exact. An id outside [0, table_rows) is
// skipped and recorded in the status word (cuda_common.cuh StatusCode); the next
// synchronising call throws naming the row and the id.
#include "../../model/half.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

__global__ void embedding_forward_half_kernel(const int32_t* ids, int rows, const uint16_t* table, bool bf16,
                                              int table_rows, int D, float* out, int* status) {
  const size_t n = static_cast<size_t>(rows) * D;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int r = static_cast<int>(i / D), c = static_cast<int>(i % D);
    const int32_t id = ids[r];
    if (id < 0 || id >= table_rows) {
      if (c == 0) cuda::report_bad_index(status, cuda::kStatusEmbeddingHalfId, r, id);
      continue;
    }
    const uint16_t h = table[static_cast<size_t>(id) * D + c];
    out[i] = bf16 ? __uint_as_float(static_cast<uint32_t>(h) << 16) : __uint_as_float(f16_to_f32_bits(h));
  }
}

}  // namespace

void CudaBackend::embedding_forward_half(const int32_t* ids, int rows, const uint16_t* table, bool bf16,
                                         int table_rows, int D, float* out) {
  if (rows <= 0 || D <= 0) return;
  const size_t n = static_cast<size_t>(rows) * D;
  PS_LAUNCH(embedding_forward_half_kernel, cuda::blocks_for(n), cuda::kThreads, 0, 0)(ids, rows, table, bf16,
                                                                                      table_rows, D, out, status_);
  cuda::check_launch("embedding_forward_half");
}

}  // namespace ps
