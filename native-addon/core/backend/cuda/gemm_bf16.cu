// bf16 tensor-core GEMM (see gemm_bf16.h). One kernel for nt / nn / tn:
// a 128 x 128 output tile per block of 8 warps, k-steps of 32; each warp owns
// a 64 x 32 sub-tile = 4 x 4 mma.sync m16n8k16 products per 16-wide k slice.
//
// Both operands are staged k-contiguous in shared memory (As[i][p], Bs[j][p])
// so every fragment register is one aligned 32-bit shared load; rows are
// padded by 8 bf16 (80-byte stride), which puts the 8 rows x 4 words that a
// fragment load touches in 32 different banks. Global loads run along
// whichever index is contiguous in memory (coalesced in every layout), and
// the fp32 -> bf16 rounding (quant/bf16_round.h, nearest even) happens on
// that load, so no bf16 copy of an operand is ever written to global memory.
// B may also be given as raw bf16 bits (a BF16 weight, or a weight converted
// into bf16 scratch): the kernel is the same template with B's loader
// (stage_bf16) taking the bits as they are, so a raw operand equal to the
// rounded fp32 one gives the same bits in C.
//
// Simple on purpose: no cp.async pipeline, no ldmatrix. It is the bf16 path
// that needs nothing but the driver; cuBLASLt, when present, is faster.
#include <string>

#include "../../quant/bf16_round.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "gemm_bf16.h"
#include "gemm_common.h"
#include "mma_bf16.cuh"

namespace ps {
namespace cuda {

namespace {

constexpr int kTileM = 128, kTileN = 128, kTileK = 32, kPadK = 8, kBlockThreads = 256;
constexpr int kRowStride = kTileK + kPadK;  // bf16 per shared row
constexpr int kWarpM = 64, kWarpN = 32;     // a warp's sub-tile (2 x 4 warps)

static __device__ __forceinline__ uint16_t to_bf16(float v) {
  return bf16_bits_from_f32_bits(__float_as_uint(v));
}

// An operand value as the bf16 bits staged into shared memory: fp32 rounded
// to nearest even, bf16 bits as they are.
static __device__ __forceinline__ uint16_t stage_bf16(float v) { return to_bf16(v); }
static __device__ __forceinline__ uint16_t stage_bf16(uint16_t v) { return v; }

// Two adjacent bf16 of a shared row as one fragment register.
static __device__ __forceinline__ uint32_t pair(const uint16_t* p) {
#ifdef PS_CUDA_SIM
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 16);
#else
  return *reinterpret_cast<const uint32_t*>(p);  // 4-byte aligned: even column, 80-byte rows
#endif
}

// Two blocks per SM (16 warps to hide the unpipelined loads): at most 128
// registers a thread; ptxas spills ~100 bytes of the 64 accumulators' address
// arithmetic for that (sm_90, nvcc 13), cheaper than halving the warps.
template <bool kPortable, typename TB>
__global__ void __launch_bounds__(kBlockThreads, 2)
    gemm_bf16_kernel(int M, int N, int K, float alpha, const float* __restrict__ A, long long a_rs,
                     long long a_cs, const TB* __restrict__ B, long long b_rs, long long b_cs,
                     bool accumulate, float* C, long long ldc) {
  __shared__ __align__(16) uint16_t As[kTileM * kRowStride];  // As[i][p] = op(A)[i0 + i, k0 + p]
  __shared__ __align__(16) uint16_t Bs[kTileN * kRowStride];  // Bs[j][p] = op(B)[k0 + p, j0 + j]
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int wm = (warp >> 2) * kWarpM, wn = (warp & 3) * kWarpN;
  const long long i0 = static_cast<long long>(blockIdx.x) * kTileM, j0 = static_cast<long long>(blockIdx.y) * kTileN;

  float acc[4][4][4];
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int x = 0; x < 4; ++x) acc[mi][ni][x] = 0.0f;

  // The warp's 16-row and 8-column sub-tiles that hold any of C: edge tiles
  // (and small problems) skip the products of padding. Uniform per warp, so
  // every lane of a warp takes the same branch (mma.sync needs all 32).
  const long long rows_left = M - (i0 + wm), cols_left = N - (j0 + wn);
  const int m_live = rows_left <= 0 ? 0 : rows_left >= 64 ? 4 : static_cast<int>((rows_left + 15) / 16);
  const int n_live = cols_left <= 0 ? 0 : cols_left >= 32 ? 4 : static_cast<int>((cols_left + 7) / 8);

  for (int k0 = 0; k0 < K; k0 += kTileK) {
    for (int e = t; e < kTileM * kTileK; e += kBlockThreads) {
      int i, p;
      if (a_cs == 1) { p = e % kTileK; i = e / kTileK; } else { i = e % kTileM; p = e / kTileM; }
      const long long gi = i0 + i;
      const int gp = k0 + p;
      As[i * kRowStride + p] = gi < M && gp < K ? to_bf16(A[gi * a_rs + gp * a_cs]) : uint16_t(0);
    }
    for (int e = t; e < kTileN * kTileK; e += kBlockThreads) {
      int j, p;
      if (b_cs == 1) { j = e % kTileN; p = e / kTileN; } else { p = e % kTileK; j = e / kTileK; }
      const long long gj = j0 + j;
      const int gp = k0 + p;
      Bs[j * kRowStride + p] = gj < N && gp < K ? stage_bf16(B[gp * b_rs + gj * b_cs]) : uint16_t(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      uint32_t a[4][4], b[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) {
        const uint16_t* r0 = As + (wm + mi * 16 + g) * kRowStride + kk + 2 * tq;
        const uint16_t* r8 = r0 + 8 * kRowStride;
        a[mi][0] = pair(r0);
        a[mi][1] = pair(r8);
        a[mi][2] = pair(r0 + 8);
        a[mi][3] = pair(r8 + 8);
      }
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const uint16_t* c = Bs + (wn + ni * 8 + g) * kRowStride + kk + 2 * tq;
        b[ni][0] = pair(c);
        b[ni][1] = pair(c + 8);
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
          if (mi >= m_live || ni >= n_live) continue;
          if (kPortable)
            mma_bf16_16816_portable(acc[mi][ni], a[mi], b[ni]);
          else
            mma_bf16_16816(acc[mi][ni], a[mi], b[ni]);
        }
    }
    __syncthreads();
  }

#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const long long i = i0 + wm + mi * 16 + g + 8 * (x >> 1);
        const long long j = j0 + wn + ni * 8 + 2 * tq + (x & 1);
        if (i >= M || j >= N) continue;
        float* c = C + i * ldc + j;
        const float v = alpha * acc[mi][ni][x];
        *c = accumulate ? *c + v : v;
      }
}

template <typename TB>
void run(const char* op, int M, int N, int K, float alpha, const float* A, long long a_rs, long long a_cs,
         const TB* B, long long b_rs, long long b_cs, float beta, float* C, int ldc, MmaPath path) {
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    if (beta == 0.0f) zero_matrix(op, M, N, C, ldc);
    return;
  }
  if ((N + kTileN - 1) / kTileN > 65535)
    throw Error(std::string(op) + ": N=" + std::to_string(N) + " exceeds this kernel's grid (8,388,480 columns)");
  const dim3 grid((M + kTileM - 1) / kTileM, (N + kTileN - 1) / kTileN);
  auto* kernel = path == MmaPath::kPortable ? &gemm_bf16_kernel<true, TB> : &gemm_bf16_kernel<false, TB>;
  PS_LAUNCH(kernel, grid, kBlockThreads, 0, 0)(M, N, K, alpha, A, a_rs, a_cs, B, b_rs, b_cs, beta != 0.0f, C, ldc);
  check_launch(op);
}

}  // namespace

bool has_bf16_tensor_cores(const CudaDeviceInfo& info) { return info.major >= 8; }

void gemm_bf16_nt(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
                  float* C, int ldc, MmaPath path) {
  check_gemm_args("gemm_bf16_nt", M, N, K, lda, K, ldb, K, ldc, beta);
  run("gemm_bf16_nt", M, N, K, alpha, A, lda, 1, B, 1, ldb, beta, C, ldc, path);
}

void gemm_bf16_nn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
                  float* C, int ldc, MmaPath path) {
  check_gemm_args("gemm_bf16_nn", M, N, K, lda, K, ldb, N, ldc, beta);
  run("gemm_bf16_nn", M, N, K, alpha, A, lda, 1, B, ldb, 1, beta, C, ldc, path);
}

void gemm_bf16_tn(int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
                  float* C, int ldc, MmaPath path) {
  check_gemm_args("gemm_bf16_tn", M, N, K, lda, M, ldb, N, ldc, beta);
  run("gemm_bf16_tn", M, N, K, alpha, A, 1, lda, B, ldb, 1, beta, C, ldc, path);
}

void gemm_bf16_nt(int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* B, int ldb, float beta,
                  float* C, int ldc, MmaPath path) {
  check_gemm_args("gemm_bf16_nt", M, N, K, lda, K, ldb, K, ldc, beta);
  run("gemm_bf16_nt", M, N, K, alpha, A, lda, 1, B, 1, ldb, beta, C, ldc, path);
}

void gemm_bf16_nn(int M, int N, int K, float alpha, const float* A, int lda, const uint16_t* B, int ldb, float beta,
                  float* C, int ldc, MmaPath path) {
  check_gemm_args("gemm_bf16_nn", M, N, K, lda, K, ldb, N, ldc, beta);
  run("gemm_bf16_nn", M, N, K, alpha, A, lda, 1, B, ldb, 1, beta, C, ldc, path);
}

}  // namespace cuda
}  // namespace ps
