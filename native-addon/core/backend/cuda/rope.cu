// Rotary position embedding on the CUDA backend, Hugging Face's rotate_half
// layout: dimension i pairs with i + D/2. cos/sin tables are [max_pos, D/2].
// One thread per (row, head, i < D/2) pair, in place. A negative position is
// skipped and reported (cuda_backend.h); positions past the table are the
// caller's to check, as on the CPU.
#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

template <bool kInverse>
__global__ void rope_kernel(float* x, const int32_t* pos, int rows, int H, int D, const float* cos,
                            const float* sin, int* status) {
  const int half = D / 2;
  const size_t n = static_cast<size_t>(rows) * H * half;
  for (size_t t = blockIdx.x * size_t(blockDim.x) + threadIdx.x; t < n; t += size_t(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(t % half);
    const size_t rh = t / half;
    const int r = static_cast<int>(rh / H);
    const int32_t p = pos[r];
    if (p < 0) {
      if (i == 0 && rh % H == 0)
        cuda::report_bad_index(status, kInverse ? cuda::kStatusRopeBackwardPos : cuda::kStatusRopeForwardPos, r, p);
      continue;
    }
    const float c = cos[static_cast<size_t>(p) * half + i], s = sin[static_cast<size_t>(p) * half + i];
    float* lo = x + rh * D;
    const float a = lo[i], b = lo[i + half];
    if (!kInverse) {
      lo[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
      lo[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    } else {
      lo[i] = __fadd_rn(__fmul_rn(a, c), __fmul_rn(b, s));
      lo[i + half] = __fsub_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    }
  }
}

void check_rope(const char* op, int D) {
  if (D <= 0 || D % 2 != 0)
    throw Error(std::string(op) + ": head dim must be even and positive, got " + std::to_string(D));
}

}  // namespace

void CudaBackend::rope_forward(float* x, const int32_t* pos, int rows, int H, int D, const float* cos,
                               const float* sin) {
  if (rows <= 0 || H <= 0) return;
  check_rope("rope_forward", D);
  const size_t n = static_cast<size_t>(rows) * H * (D / 2);
  PS_LAUNCH(rope_kernel<false>, cuda::blocks_for(n), cuda::kThreads, 0, 0)(x, pos, rows, H, D, cos, sin, status_);
  cuda::check_launch("rope_forward");
}

void CudaBackend::rope_backward(float* dx, const int32_t* pos, int rows, int H, int D, const float* cos,
                                const float* sin) {
  if (rows <= 0 || H <= 0) return;
  check_rope("rope_backward", D);
  const size_t n = static_cast<size_t>(rows) * H * (D / 2);
  PS_LAUNCH(rope_kernel<true>, cuda::blocks_for(n), cuda::kThreads, 0, 0)(dx, pos, rows, H, D, cos, sin, status_);
  cuda::check_launch("rope_backward");
}

}  // namespace ps
