// Fused LoRA forward/backward kernels (the plan is in lora_fused.h).
//
// Every kernel runs 256 threads on 32-row tiles; the rank is padded to RP
// (16, 32 or 64, a template argument) with zeros in shared memory, so the
// inner loops have compile-time trip counts and the padded ranks add zeros.
// Shared rows are padded by one float so that the column walks of the
// staged tiles hit distinct banks.
//
// Thread layouts (tid = threadIdx.x):
//   [32 rows x RP ranks] products (H, dH, and dB per 32 columns):
//       rank lane tr = tid % 16 owns ranks tr + 16 j, row lane tm = tid / 16
//       owns rows (or dY columns) tm + 16 i, i < 2;
//   [32 rows x 64 columns] products (Y, dX) and the dA partial:
//       column lane tc = tid % 32 owns columns tc + 32 q, q < 2, so a warp
//       reads and writes 128 consecutive bytes of a row; tq = tid / 32 owns
//       rows tq + 8 i (Y, dX) or ranks tq + 8 i (dA).
#include <algorithm>
#include <cstdint>
#include <string>

#include "../../quant/bf16_round.h"
#include "cuda_common.cuh"
#include "lora_fused.h"

namespace ps {
namespace cuda {

namespace {

using namespace lora_plan;

constexpr int kLoraThreads = 256;
constexpr int kFwdKChunk = 32;    // forward 1: X / A columns staged per step
constexpr int kFwdNChunk = 64;    // forward 2: B rows (Y columns) per step
constexpr int kFwdNChunks = kFwdNGroup / kFwdNChunk;
constexpr int kDyChunk = 32;      // backward 1: dY columns staged per step
constexpr int kDyChunks = kDySuper / kDyChunk;
constexpr int kXChunk = 64;       // backward 3: X / A / dX columns per step
constexpr int kXChunks = kXGroup / kXChunk;

// Resident blocks per SM that backward kernel 3 asks the compiler for: 2
// (at most 128 registers a thread) up to padded rank 32, where that costs at
// most 48 spilled bytes (ptxas -v, sm_75 and sm_90; left alone it takes 137
// registers at rank 16: one block per SM); at 64 its dA partials alone take
// 32 registers and a cap of 128 spills ~200 bytes. Kernel 1 stays below 128
// by itself up to rank 32 (80-90 registers, three blocks per SM at 16).
template <int RP>
constexpr int kDxBlocksPerSm = RP <= 32 ? 2 : 1;

// The operand a product sees: x itself (fp32), or x rounded to bf16 (nearest
// even, quant/bf16_round.h) and widened back, the value a bf16 GEMM operand
// carries; the product of two such values is exact in fp32.
template <bool kBf16>
__device__ __forceinline__ float operand(float x) {
  if (kBf16) return __uint_as_float(static_cast<uint32_t>(bf16_bits_from_f32_bits(__float_as_uint(x))) << 16);
  return x;
}

// ---- forward ---------------------------------------------------------------

// Forward kernel 1. Block (tile, g): rows [32 tile, 32 tile + 32), X columns
// of K group g. The group's share of H = X·Aᵀ accumulates in registers over
// 32-column chunks of X and A staged in shared memory; the next chunk is
// loaded into registers while the current one is multiplied (two chunks in
// flight per thread). Out: H itself when there is one K group, else the
// group's partial part_h[g] (summed by lora_reduce_rows_kernel).
template <int RP, bool kBf16>
__global__ void __launch_bounds__(kLoraThreads)
    lora_forward_xa_kernel(int M, int K, int r, const float* __restrict__ X, const float* __restrict__ A,
                           int k_group, float* __restrict__ out, int ld_out) {
  constexpr int RJ = RP / 16;
  constexpr int kXPer = kRows * kFwdKChunk / kLoraThreads;  // X values a thread stages per chunk
  constexpr int kAPer = RP * kFwdKChunk / kLoraThreads;     // A values a thread stages per chunk
  __shared__ float Xs[kRows][kFwdKChunk + 1];
  __shared__ float As[RP][kFwdKChunk + 1];
  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * kRows;
  const int tr = tid % 16, tm = tid / 16;
  const int k_begin = blockIdx.y * k_group, k_end = min(K, k_begin + k_group);

  float xr[kXPer], ar[kAPer];
  auto load = [&](int k0) {
#pragma unroll
    for (int q = 0; q < kXPer; ++q) {
      const int e = tid + q * kLoraThreads, i = e / kFwdKChunk, c = e % kFwdKChunk, m = m0 + i, k = k0 + c;
      xr[q] = m < M && k < k_end ? operand<kBf16>(X[static_cast<size_t>(m) * K + k]) : 0.0f;
    }
#pragma unroll
    for (int q = 0; q < kAPer; ++q) {
      const int e = tid + q * kLoraThreads, j = e / kFwdKChunk, c = e % kFwdKChunk, k = k0 + c;
      ar[q] = j < r && k < k_end ? operand<kBf16>(A[static_cast<size_t>(j) * K + k]) : 0.0f;
    }
  };
  float h[2][RJ];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < RJ; ++j) h[i][j] = 0.0f;
  load(k_begin);
  for (int k0 = k_begin; k0 < k_end; k0 += kFwdKChunk) {
#pragma unroll
    for (int q = 0; q < kXPer; ++q) {
      const int e = tid + q * kLoraThreads;
      Xs[e / kFwdKChunk][e % kFwdKChunk] = xr[q];
    }
#pragma unroll
    for (int q = 0; q < kAPer; ++q) {
      const int e = tid + q * kLoraThreads;
      As[e / kFwdKChunk][e % kFwdKChunk] = ar[q];
    }
    __syncthreads();
    if (k0 + kFwdKChunk < k_end) load(k0 + kFwdKChunk);  // in flight during the products below
#pragma unroll 8
    for (int c = 0; c < kFwdKChunk; ++c) {
      float a[RJ];
#pragma unroll
      for (int j = 0; j < RJ; ++j) a[j] = As[tr + 16 * j][c];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const float x = Xs[tm + 16 * i][c];
#pragma unroll
        for (int j = 0; j < RJ; ++j) h[i][j] += x * a[j];
      }
    }
    __syncthreads();  // the next chunk overwrites Xs / As
  }
  float* o = out + static_cast<size_t>(blockIdx.y) * M * ld_out;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < RJ; ++j) {
      const int m = m0 + tm + 16 * i, rank = tr + 16 * j;
      if (m < M && rank < r) o[static_cast<size_t>(m) * ld_out + rank] = h[i][j];
    }
}

// Forward kernel 2. Block (tile, g): Y[rows, 128 columns of group g] +=
// s · H tile · Bᵀ, the H tile staged once (rounded when bf16), B 64 rows at
// a time; each thread loads its Y values before the products so the loads
// overlap them.
template <int RP, bool kBf16>
__global__ void __launch_bounds__(kLoraThreads)
    lora_forward_hb_kernel(int M, int N, int r, float s, const float* __restrict__ H, int ldh,
                           const float* __restrict__ B, int ldb, float* __restrict__ Y) {
  __shared__ float Hs[kRows][RP + 1];
  __shared__ float Bs[kFwdNChunk][RP + 1];
  const int tid = threadIdx.x;
  const int m0 = blockIdx.x * kRows;
  const int tc = tid % 32, tq = tid / 32;
  for (int e = tid; e < kRows * RP; e += kLoraThreads) {
    const int i = e / RP, j = e % RP, m = m0 + i;
    Hs[i][j] = m < M && j < r ? operand<kBf16>(H[static_cast<size_t>(m) * ldh + j]) : 0.0f;
  }
#pragma unroll
  for (int ch = 0; ch < kFwdNChunks; ++ch) {
    const int n0 = blockIdx.y * kFwdNGroup + ch * kFwdNChunk;
    if (n0 >= N) break;  // the same for the whole block
    float y[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        const int m = m0 + tq + 8 * i, n = n0 + tc + 32 * q;
        y[i][q] = m < M && n < N ? Y[static_cast<size_t>(m) * N + n] : 0.0f;
      }
    for (int e = tid; e < kFwdNChunk * RP; e += kLoraThreads) {
      const int n = e / RP, j = e % RP;
      Bs[n][j] = n0 + n < N && j < r ? operand<kBf16>(B[static_cast<size_t>(n0 + n) * ldb + j]) : 0.0f;
    }
    __syncthreads();  // Bs staged (and, the first time, Hs)
    float acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[i][0] = acc[i][1] = 0.0f;
#pragma unroll 8
    for (int j = 0; j < RP; ++j) {
      const float b0 = Bs[tc][j], b1 = Bs[tc + 32][j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float hv = Hs[tq + 8 * i][j];
        acc[i][0] += hv * b0;
        acc[i][1] += hv * b1;
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        const int m = m0 + tq + 8 * i, n = n0 + tc + 32 * q;
        if (m < M && n < N) Y[static_cast<size_t>(m) * N + n] = y[i][q] + s * acc[i][q];
      }
    __syncthreads();  // the next chunk overwrites Bs
  }
}

// ---- the split of the work between blocks ----------------------------------


// ---- backward --------------------------------------------------------------

// Kernel 1. Block (g_row, g_col): rows of the row group's tiles, dY columns
// of the column group's 128-column super-chunks. For each super-chunk, every
// row tile: dY tile staged 32 columns at a time with the matching B rows;
//   dH partial [rows, r] += dY tile · B rows      (registers, per row tile;
//       kept in part_h[g_col] across super-chunks by the same thread),
//   dB partial [128 cols, r] += dY tileᵀ · H tile (registers, across the row
//       tiles; written to part_b[g_row] once per super-chunk).
template <int RP, bool kBf16>
__global__ void __launch_bounds__(kLoraThreads)
    lora_backward_dy_kernel(int M, int N, int r, const float* __restrict__ dY, const float* __restrict__ B, int ldb,
                            const float* __restrict__ H, int ldh, int tiles_per_group, int supers_per_group, int want_dh,
                            int want_db, float* __restrict__ part_h, float* __restrict__ part_b) {
  constexpr int RJ = RP / 16;
  __shared__ float Ys[kRows][kDyChunk + 1];
  __shared__ float Bs[kDyChunk][RP + 1];
  __shared__ float Hs[kRows][RP + 1];
  const int tid = threadIdx.x;
  const int tr = tid % 16, tm = tid / 16;
  const int tiles = (M + kRows - 1) / kRows, supers = (N + kDySuper - 1) / kDySuper;
  const int t_begin = blockIdx.x * tiles_per_group, t_end = min(tiles, t_begin + tiles_per_group);
  const int sc_begin = blockIdx.y * supers_per_group, sc_end = min(supers, sc_begin + supers_per_group);
  float* ph = part_h + static_cast<size_t>(blockIdx.y) * M * r;
  float* pb = part_b + static_cast<size_t>(blockIdx.x) * N * r;

  // The next chunk (of this row tile, or the first of the next) is loaded
  // into registers while the current one is multiplied.
  constexpr int kYPer = kRows * kDyChunk / kLoraThreads;  // dY values a thread stages per chunk
  constexpr int kBPer = kDyChunk * RP / kLoraThreads;     // B values a thread stages per chunk
  float yr[kYPer], br[kBPer];
  auto load = [&](int m0, int n0) {
#pragma unroll
    for (int q = 0; q < kYPer; ++q) {
      const int e = tid + q * kLoraThreads, i = e / kDyChunk, c = e % kDyChunk, m = m0 + i, n = n0 + c;
      yr[q] = m < M && n < N ? operand<kBf16>(dY[static_cast<size_t>(m) * N + n]) : 0.0f;
    }
#pragma unroll
    for (int q = 0; q < kBPer; ++q) {
      const int e = tid + q * kLoraThreads, c = e / RP, j = e % RP, n = n0 + c;
      br[q] = n < N && j < r ? operand<kBf16>(B[static_cast<size_t>(n) * ldb + j]) : 0.0f;
    }
  };

  for (int sc = sc_begin; sc < sc_end; ++sc) {
    float db[kDyChunks][2][RJ];
#pragma unroll
    for (int ch = 0; ch < kDyChunks; ++ch)
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < RJ; ++j) db[ch][i][j] = 0.0f;
    load(t_begin * kRows, sc * kDySuper);
    for (int t = t_begin; t < t_end; ++t) {
      const int m0 = t * kRows;
      if (want_db)  // read after the first chunk's barrier
        for (int e = tid; e < kRows * RP; e += kLoraThreads) {
          const int i = e / RP, j = e % RP, m = m0 + i;
          Hs[i][j] = m < M && j < r ? operand<kBf16>(H[static_cast<size_t>(m) * ldh + j]) : 0.0f;
        }
      float dh[2][RJ];
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < RJ; ++j) dh[i][j] = 0.0f;
#pragma unroll
      for (int ch = 0; ch < kDyChunks; ++ch) {
        const int n0 = sc * kDySuper + ch * kDyChunk;
#pragma unroll
        for (int q = 0; q < kYPer; ++q) {
          const int e = tid + q * kLoraThreads;
          Ys[e / kDyChunk][e % kDyChunk] = yr[q];
        }
#pragma unroll
        for (int q = 0; q < kBPer; ++q) {
          const int e = tid + q * kLoraThreads;
          Bs[e / RP][e % RP] = br[q];
        }
        __syncthreads();
        if (ch + 1 < kDyChunks) load(m0, n0 + kDyChunk);
        else if (t + 1 < t_end) load(m0 + kRows, sc * kDySuper);
        if (want_dh) {
#pragma unroll 8
          for (int c = 0; c < kDyChunk; ++c) {
            float b[RJ];
#pragma unroll
            for (int j = 0; j < RJ; ++j) b[j] = Bs[c][tr + 16 * j];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
              const float yv = Ys[tm + 16 * i][c];
#pragma unroll
              for (int j = 0; j < RJ; ++j) dh[i][j] += yv * b[j];
            }
          }
        }
        if (want_db) {
#pragma unroll 8
          for (int i = 0; i < kRows; ++i) {
            float hv[RJ];
#pragma unroll
            for (int j = 0; j < RJ; ++j) hv[j] = Hs[i][tr + 16 * j];
#pragma unroll
            for (int q = 0; q < 2; ++q) {
              const float yv = Ys[i][tm + 16 * q];
#pragma unroll
              for (int j = 0; j < RJ; ++j) db[ch][q][j] += yv * hv[j];
            }
          }
        }
        __syncthreads();  // the next chunk (or row tile) overwrites Ys / Bs / Hs
      }
      if (want_dh)
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < RJ; ++j) {
            const int m = m0 + tm + 16 * i, rank = tr + 16 * j;
            if (m < M && rank < r) {
              float* p = ph + static_cast<size_t>(m) * r + rank;
              *p = sc == sc_begin ? dh[i][j] : *p + dh[i][j];  // this thread's own element: no race
            }
          }
    }
    if (want_db)
#pragma unroll
      for (int ch = 0; ch < kDyChunks; ++ch)
#pragma unroll
        for (int q = 0; q < 2; ++q)
#pragma unroll
          for (int j = 0; j < RJ; ++j) {
            const int n = sc * kDySuper + ch * kDyChunk + tm + 16 * q, rank = tr + 16 * j;
            if (n < N && rank < r) pb[static_cast<size_t>(n) * r + rank] = db[ch][q][j];
          }
  }
}

// Backward kernel 2 (and the forward's H from its K-group partials):
// out[row, col] (row stride ld_out) = s · sum of the groups' partials
// [groups][rows][cols], in group order.
__global__ void lora_reduce_rows_kernel(size_t n, int cols, int groups, float s, const float* __restrict__ part,
                                        float* __restrict__ out, int ld_out) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < n; e += size_t(gridDim.x) * blockDim.x) {
    float acc = part[e];
    for (int g = 1; g < groups; ++g) acc += part[static_cast<size_t>(g) * n + e];
    out[(e / cols) * ld_out + e % cols] = s * acc;
  }
}

// Kernel 3. Block (g_row, g_col): rows of the row group's tiles, X columns
// [128 g_col, 128 g_col + 128). Per row tile the dH tile is staged once,
// then per 64 columns:
//   dX tile += dH tile · A columns                (written at once),
//   dA partial [r, 128 cols] += dH tileᵀ · X tile (registers, across the row
//       tiles; written to part_a[g_row] at the end).
template <int RP, bool kBf16>
__global__ void __launch_bounds__(kLoraThreads, kDxBlocksPerSm<RP>)
    lora_backward_dx_kernel(int M, int K, int r, const float* __restrict__ dH, int ldh, const float* __restrict__ A,
                            const float* __restrict__ X, int tiles_per_group, float* __restrict__ dX,
                            float* __restrict__ part_a) {
  constexpr int RI = RP / 8;
  __shared__ float Hs[kRows][RP + 1];
  __shared__ float As[RP][kXChunk + 1];
  __shared__ float Xs[kRows][kXChunk + 1];
  const int tid = threadIdx.x;
  const int tc = tid % 32, tq = tid / 32;
  const int tiles = (M + kRows - 1) / kRows;
  const int t_begin = blockIdx.x * tiles_per_group, t_end = min(tiles, t_begin + tiles_per_group);
  const int kg0 = blockIdx.y * kXGroup;
  const bool want_da = part_a != nullptr, want_dx = dX != nullptr;

  float da[kXChunks][RI][2];
#pragma unroll
  for (int ch = 0; ch < kXChunks; ++ch)
#pragma unroll
    for (int i = 0; i < RI; ++i) da[ch][i][0] = da[ch][i][1] = 0.0f;

  // The next chunk's A and X columns (of this row tile, or the first of the
  // next) are loaded into registers while the current one is multiplied.
  constexpr int kAPer = RP * kXChunk / kLoraThreads;     // A values a thread stages per chunk
  constexpr int kXPer = kRows * kXChunk / kLoraThreads;  // X values a thread stages per chunk
  float ar[kAPer], xr[kXPer];
  auto load = [&](int m0, int k0) {
#pragma unroll
    for (int q = 0; q < kAPer; ++q) {
      const int e = tid + q * kLoraThreads, j = e / kXChunk, c = e % kXChunk, k = k0 + c;
      ar[q] = j < r && k < K ? operand<kBf16>(A[static_cast<size_t>(j) * K + k]) : 0.0f;
    }
    if (want_da)
#pragma unroll
      for (int q = 0; q < kXPer; ++q) {
        const int e = tid + q * kLoraThreads, i = e / kXChunk, c = e % kXChunk, m = m0 + i, k = k0 + c;
        xr[q] = m < M && k < K ? operand<kBf16>(X[static_cast<size_t>(m) * K + k]) : 0.0f;
      }
  };

  load(t_begin * kRows, kg0);
  for (int t = t_begin; t < t_end; ++t) {
    const int m0 = t * kRows;
    for (int e = tid; e < kRows * RP; e += kLoraThreads) {  // read after the first chunk's barrier
      const int i = e / RP, j = e % RP, m = m0 + i;
      Hs[i][j] = m < M && j < r ? operand<kBf16>(dH[static_cast<size_t>(m) * ldh + j]) : 0.0f;
    }
#pragma unroll
    for (int ch = 0; ch < kXChunks; ++ch) {
      const int k0 = kg0 + ch * kXChunk;
      if (k0 >= K) break;  // the same for the whole block
#pragma unroll
      for (int q = 0; q < kAPer; ++q) {
        const int e = tid + q * kLoraThreads;
        As[e / kXChunk][e % kXChunk] = ar[q];
      }
      if (want_da)
#pragma unroll
        for (int q = 0; q < kXPer; ++q) {
          const int e = tid + q * kLoraThreads;
          Xs[e / kXChunk][e % kXChunk] = xr[q];
        }
      // This thread's dX values, loaded before the barrier so that they
      // arrive during it and the products.
      float x[4][2];
      if (want_dx)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int q = 0; q < 2; ++q) {
            const int m = m0 + tq + 8 * i, k = k0 + tc + 32 * q;
            x[i][q] = m < M && k < K ? dX[static_cast<size_t>(m) * K + k] : 0.0f;
          }
      __syncthreads();
      if (ch + 1 < kXChunks && k0 + kXChunk < K) load(m0, k0 + kXChunk);
      else if (t + 1 < t_end) load(m0 + kRows, kg0);
      if (want_dx) {
        float acc[4][2];
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[i][0] = acc[i][1] = 0.0f;
#pragma unroll 8
        for (int j = 0; j < RP; ++j) {
          const float a0 = As[j][tc], a1 = As[j][tc + 32];
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float hv = Hs[tq + 8 * i][j];
            acc[i][0] += hv * a0;
            acc[i][1] += hv * a1;
          }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int q = 0; q < 2; ++q) {
            const int m = m0 + tq + 8 * i, k = k0 + tc + 32 * q;
            if (m < M && k < K) dX[static_cast<size_t>(m) * K + k] = x[i][q] + acc[i][q];
          }
      }
      if (want_da) {
#pragma unroll 8
        for (int m = 0; m < kRows; ++m) {
          const float x0 = Xs[m][tc], x1 = Xs[m][tc + 32];
#pragma unroll
          for (int i = 0; i < RI; ++i) {
            const float hv = Hs[m][tq + 8 * i];
            da[ch][i][0] += hv * x0;
            da[ch][i][1] += hv * x1;
          }
        }
      }
      __syncthreads();  // the next chunk (or row tile) overwrites As / Xs / Hs
    }
  }
  if (want_da) {
    float* pa = part_a + static_cast<size_t>(blockIdx.x) * r * K;
#pragma unroll
    for (int ch = 0; ch < kXChunks; ++ch)
#pragma unroll
      for (int i = 0; i < RI; ++i)
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          const int rank = tq + 8 * i, k = kg0 + ch * kXChunk + tc + 32 * q;
          if (rank < r && k < K) pa[static_cast<size_t>(rank) * K + k] = da[ch][i][q];
        }
  }
}

// Kernel 4: dB += s · sum of the row groups' dB partials, dA += sum of their
// dA partials, row groups in order (one launch for both; nb or na may be 0).
// The dB partials are [groups][N][r] (nb = N r), dB's rows have stride ldb.
__global__ void lora_reduce_grads_kernel(int groups, float s, size_t nb, int r, const float* __restrict__ part_b,
                                         float* __restrict__ dB, int ldb, size_t na, const float* __restrict__ part_a,
                                         float* __restrict__ dA) {
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < nb + na;
       e += size_t(gridDim.x) * blockDim.x) {
    if (e < nb) {
      float acc = part_b[e];
      for (int g = 1; g < groups; ++g) acc += part_b[static_cast<size_t>(g) * nb + e];
      dB[(e / r) * ldb + e % r] += s * acc;
    } else {
      const size_t i = e - nb;
      float acc = part_a[i];
      for (int g = 1; g < groups; ++g) acc += part_a[static_cast<size_t>(g) * na + i];
      dA[i] += acc;
    }
  }
}

void check_supported(const char* op, int M, int N, int K, int r) {
  if (!lora_fused_supported(M, N, K, r))
    throw Error(std::string(op) + ": the fused LoRA kernels need 1 <= r <= " + std::to_string(kLoraFusedMaxRank) +
                " and M, N, K >= 1 (got M=" + std::to_string(M) + ", N=" + std::to_string(N) +
                ", K=" + std::to_string(K) + ", r=" + std::to_string(r) + "): use the GEMM path");
}

// Ranks above kSliceRank run as consecutive slices of at most kSliceRank
// ranks (the kernels' shared-memory tiles are sized for 64). The branch is
// linear in its rank columns: Y += s · sum over slices of H_s B_sᵀ and
// dX += sum of dH_s A_s, in slice order, and each slice owns its columns of
// H, dH and dB and its rows of A and dA. Each slice reads X and dY once.

// The padded rank of the kernels for a slice of rank rs.
int padded_rank(int rs) { return rs <= 16 ? 16 : rs <= 32 ? 32 : 64; }

// One slice: rank rs, rows of H / dH / B / dB have stride ldr (the full rank).
template <int RP, bool kBf16>
void launch_forward(const Split& p, int M, int N, int K, int rs, int ldr, float s, const float* X, const float* A,
                    const float* B, float* H, float* Y, float* part_h) {
  auto* k1 = &lora_forward_xa_kernel<RP, kBf16>;
  const bool direct = p.k_groups == 1;
  PS_LAUNCH(k1, dim3(p.tiles, p.k_groups), kLoraThreads, 0, 0)
  (M, K, rs, X, A, p.k_group, direct ? H : part_h, direct ? ldr : rs);
  check_launch("lora_forward (X pass)");
  if (!direct) {
    const size_t n = static_cast<size_t>(M) * rs;
    PS_LAUNCH(lora_reduce_rows_kernel, blocks_for(n), kThreads, 0, 0)(n, rs, p.k_groups, 1.0f, part_h, H, ldr);
    check_launch("lora_forward (H)");
  }
  auto* k2 = &lora_forward_hb_kernel<RP, kBf16>;
  PS_LAUNCH(k2, dim3(p.tiles, p.n_groups), kLoraThreads, 0, 0)(M, N, rs, s, H, ldr, B, ldr, Y);
  check_launch("lora_forward (Y pass)");
}

template <int RP, bool kBf16>
void launch_backward(const Split& p, int M, int N, int K, int rs, int ldr, float s, const float* X, const float* A,
                     const float* B, const float* H, const float* dY, float* dH, float* dA, float* dB, float* dX,
                     float* part_h, float* part_b, float* part_a) {
  const bool want_dh = dA || dX;
  auto* k1 = &lora_backward_dy_kernel<RP, kBf16>;
  PS_LAUNCH(k1, dim3(p.row_groups, p.col_groups), kLoraThreads, 0, 0)
  (M, N, rs, dY, B, ldr, H, ldr, p.tiles_per_group, p.supers_per_group, want_dh ? 1 : 0, dB ? 1 : 0, part_h,
   part_b);
  check_launch("lora_backward (dY pass)");
  if (want_dh) {
    const size_t n = static_cast<size_t>(M) * rs;
    PS_LAUNCH(lora_reduce_rows_kernel, blocks_for(n), kThreads, 0, 0)(n, rs, p.col_groups, s, part_h, dH, ldr);
    check_launch("lora_backward (dH)");
    auto* k3 = &lora_backward_dx_kernel<RP, kBf16>;
    PS_LAUNCH(k3, dim3(p.row_groups, p.x_groups), kLoraThreads, 0, 0)
    (M, K, rs, dH, ldr, A, X, p.tiles_per_group, dX, dA ? part_a : nullptr);
    check_launch("lora_backward (X pass)");
  }
  const size_t nb = dB ? static_cast<size_t>(N) * rs : 0, na = dA ? static_cast<size_t>(rs) * K : 0;
  if (nb + na > 0) {
    PS_LAUNCH(lora_reduce_grads_kernel, blocks_for(nb + na), kThreads, 0, 0)
    (p.row_groups, s, nb, rs, part_b, dB, ldr, na, part_a, dA);
    check_launch("lora_backward (dA, dB)");
  }
}


}  // namespace



void lora_fused_forward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B,
                        float* H, float* Y, float* scratch, bool bf16_operands) {
  check_supported("lora_forward", M, N, K, r);
  for (int j0 = 0; j0 < r; j0 += kSliceRank) {
    const int rs = slice_rank(r, j0);
    const Split p = split_for(M, N, K, rs);
    const float* As = A + static_cast<size_t>(j0) * K;
    const float* Bs = B + j0;
    float* Hs = H + j0;
    const int rp = padded_rank(rs);
#define PS_LORA_FORWARD(RP, BF16) launch_forward<RP, BF16>(p, M, N, K, rs, r, s, X, As, Bs, Hs, Y, scratch)
    if (bf16_operands) {
      if (rp == 16) PS_LORA_FORWARD(16, true);
      else if (rp == 32) PS_LORA_FORWARD(32, true);
      else PS_LORA_FORWARD(64, true);
    } else {
      if (rp == 16) PS_LORA_FORWARD(16, false);
      else if (rp == 32) PS_LORA_FORWARD(32, false);
      else PS_LORA_FORWARD(64, false);
    }
#undef PS_LORA_FORWARD
  }
}


void lora_fused_backward(int M, int N, int K, int r, float s, const float* X, const float* A, const float* B,
                         const float* H, const float* dY, float* dH, float* dA, float* dB, float* dX,
                         float* scratch, bool bf16_operands) {
  check_supported("lora_backward", M, N, K, r);
  if (!dA && !dB && !dX) return;
  for (int j0 = 0; j0 < r; j0 += kSliceRank) {
    const int rs = slice_rank(r, j0);
    const Split p = split_for(M, N, K, rs);
    const ScratchLayout l = layout_for(p, M, N, K, rs, dA != nullptr, dB != nullptr, dX != nullptr);
    // Unused parts point into the scratch; the kernels never touch them.
    float* part_h = scratch;
    float* part_b = scratch + l.h;
    float* part_a = scratch + l.h + l.b;
    const float* As = A + static_cast<size_t>(j0) * K;
    const float* Bs = B + j0;
    const float* Hs = H + j0;
    float* dHs = dH + j0;
    float* dAs = dA ? dA + static_cast<size_t>(j0) * K : nullptr;
    float* dBs = dB ? dB + j0 : nullptr;
    const int rp = padded_rank(rs);
#define PS_LORA_BACKWARD(RP, BF16) \
  launch_backward<RP, BF16>(p, M, N, K, rs, r, s, X, As, Bs, Hs, dY, dHs, dAs, dBs, dX, part_h, part_b, part_a)
    if (bf16_operands) {
      if (rp == 16) PS_LORA_BACKWARD(16, true);
      else if (rp == 32) PS_LORA_BACKWARD(32, true);
      else PS_LORA_BACKWARD(64, true);
    } else {
      if (rp == 16) PS_LORA_BACKWARD(16, false);
      else if (rp == 32) PS_LORA_BACKWARD(32, false);
      else PS_LORA_BACKWARD(64, false);
    }
#undef PS_LORA_BACKWARD
  }
}

}  // namespace cuda
}  // namespace ps
