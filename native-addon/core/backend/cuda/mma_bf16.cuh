// One warp-wide tensor-core product D = A B + D of a 16x16 bf16 tile A
// (row-major) and a 16x8 bf16 tile B (column-major) with fp32 accumulators:
// PTX `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32` (sm_80 and up).
//
// Fragments, per the PTX ISA ("Matrix Fragments for mma.m16n8k16 with
// floating point type"), with g = lane / 4 and t = lane % 4; each 32-bit
// register holds two bf16, the lower-indexed element in the low half:
//   A: a[0] = A[g][2t..2t+1]    a[1] = A[g+8][2t..2t+1]
//      a[2] = A[g][2t+8..2t+9]  a[3] = A[g+8][2t+8..2t+9]
//   B: b[0] = B[2t..2t+1][g]    b[1] = B[2t+8..2t+9][g]
//   D: d[0] = D[g][2t]  d[1] = D[g][2t+1]  d[2] = D[g+8][2t]  d[3] = D[g+8][2t+1]
//
// mma_bf16_16816_portable computes the same product with warp shuffles and
// fp32 fused multiply-adds (bf16 x bf16 products are exact in fp32). It is
// what the CPU simulator runs (no PTX there), what pre-Ampere GPUs run, and
// on a real GPU the parity test runs both to check the fragment layout above.
#pragma once

#include <cstdint>

#include "cuda_common.cuh"

namespace ps {
namespace cuda {

static __device__ __forceinline__ float bf16_low(uint32_t w) { return __uint_as_float(w << 16); }
static __device__ __forceinline__ float bf16_high(uint32_t w) { return __uint_as_float(w & 0xFFFF0000u); }

static __device__ inline void mma_bf16_16816_portable(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  // Rows g and g + 8 of A, all 16 columns: registers 0..3 of lanes 4g .. 4g+3.
  float arow[2][16];
#pragma unroll
  for (int src = 0; src < 4; ++src)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const uint32_t w = __shfl_sync(0xffffffffu, a[r], 4 * g + src);
      const int row = r & 1, col = 2 * src + ((r & 2) ? 8 : 0);
      arow[row][col] = bf16_low(w);
      arow[row][col + 1] = bf16_high(w);
    }
  // Columns 2t and 2t + 1 of B, all 16 rows: registers 0..1 of lanes 4n .. 4n+3.
  float bcol[2][16];
#pragma unroll
  for (int c = 0; c < 2; ++c)
#pragma unroll
    for (int src = 0; src < 4; ++src)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const uint32_t w = __shfl_sync(0xffffffffu, b[r], 4 * (2 * t + c) + src);
        const int k = 2 * src + 8 * r;
        bcol[c][k] = bf16_low(w);
        bcol[c][k + 1] = bf16_high(w);
      }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < 16; ++k) s = __fmaf_rn(arow[i >> 1][k], bcol[i & 1][k], s);
    d[i] = __fadd_rn(d[i], s);
  }
}

static __device__ __forceinline__ void mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(PS_CUDA_SIM)
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  mma_bf16_16816_portable(d, a, b);
#endif
}

}  // namespace cuda
}  // namespace ps
