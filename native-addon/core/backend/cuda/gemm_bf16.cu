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
// that needs nothing but the driver; cuBLASLt, when present, is faster. A
// second kernel (gemm_bf16_prefetch_kernel, PEFT_STUDIO_GEMM_BF16=prefetch)
// loads the next k-tile into registers (16 bytes at a time along k where the
// alignment allows) while the products of this one run; same tiles, same products in the same order, so
// the same bits (test_gemm_bf16). Which is faster is for the GPU timing to
// say (test_gemm_bf16 with PS_CUDA_PARITY_TIMING=1); until then the simple
// one is the default.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

// The warp's products of one staged k-tile: 4 x 4 mma.sync per 16-wide k
// slice, fragments as single 32-bit shared loads. The same for both kernels,
// so they add the same products in the same order (the same bits).
template <bool kPortable>
static __device__ __forceinline__ void mma_tile(const uint16_t* As, const uint16_t* Bs, float (&acc)[4][4][4],
                                                int wm, int wn, int g, int tq, int m_live, int n_live) {
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
}

// C[i, j] = alpha * acc (+ C when accumulating), inside C only.
static __device__ __forceinline__ void store_tile(const float (&acc)[4][4][4], long long i0, long long j0, int wm,
                                                  int wn, int g, int tq, int M, int N, float alpha, bool accumulate,
                                                  float* C, long long ldc) {
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

// The warp's 16-row and 8-column sub-tiles that hold any of C: edge tiles
// (and small problems) skip the products of padding. Uniform per warp, so
// every lane of a warp takes the same branch (mma.sync needs all 32).
static __device__ __forceinline__ void live_tiles(int M, int N, long long i0, long long j0, int wm, int wn,
                                                  int& m_live, int& n_live) {
  const long long rows_left = M - (i0 + wm), cols_left = N - (j0 + wn);
  m_live = rows_left <= 0 ? 0 : rows_left >= 64 ? 4 : static_cast<int>((rows_left + 15) / 16);
  n_live = cols_left <= 0 ? 0 : cols_left >= 32 ? 4 : static_cast<int>((cols_left + 7) / 8);
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
  int m_live, n_live;
  live_tiles(M, N, i0, j0, wm, wn, m_live, n_live);

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
    mma_tile<kPortable>(As, Bs, acc, wm, wn, g, tq, m_live, n_live);
    __syncthreads();
  }
  store_tile(acc, i0, j0, wm, wn, g, tq, M, N, alpha, accumulate, C, ldc);
}

// ---- the prefetching kernel ---------------------------------------------
// The same tiles, products and order (so the same bits), with the loads of
// k-tile n + 1 issued into registers before the products of tile n, and
// 4 values per load (16 bytes of fp32, 8 of bf16) where the operand's
// alignment and stride allow: global latency hides behind the products
// instead of behind the other block on the SM.

// One operand's side of a tile: `rows` (128: M's or N's) by kTileK, element
// (r, p) at base[(r0 + r) * r_stride + (k0 + p) * k_stride]; one of the two
// strides is 1. Where k is the contiguous index (A of nt / nn, B of nt) a
// thread loads 4 chunks of 4 values along k (16 bytes of fp32, 8 of bf16,
// where the alignment allows), which go to shared memory as one 8-byte
// store each. Where the rows are contiguous (A of tn, B of nn / tn) it loads
// 16 single values, adjacent threads on adjacent rows (coalesced, as the
// simple kernel): chunks of 4 rows would put a warp's 32 shared stores of
// one column in 2 banks (rows are 80 bytes apart), 16-way conflicts.
template <typename T>
struct TileOperand {
  const T* base;
  long long r_stride, k_stride;
  long long r0;
  int rows_total;  // M or N: rows past it are 0
  bool vec;        // 4-value loads allowed (aligned base, stride a multiple of 4)
};

template <typename T>
struct Staged {
  T v[16];  // the thread's values of one k-tile (4 chunks of 4, or 16 single values)
};

#ifdef PS_CUDA_SIM
// The GPU's vector accesses need their natural alignment; the simulator
// reads and writes element by element, so it checks the alignment itself.
static inline void require_aligned(const void* p, size_t bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) {
    std::fprintf(stderr, "gemm_bf16_prefetch_kernel: misaligned %zu-byte %s at %p\n", bytes, what, p);
    std::abort();
  }
}
#endif

// Chunk c (0..1023) of a k-contiguous operand: 128 rows x 8 chunks of 4 k.
template <typename T>
static __device__ __forceinline__ void load_chunk(const TileOperand<T>& o, int K, int k0, int c, T* out) {
  const int r = c >> 3, p = (c & 7) * 4;
  const long long gr = o.r0 + r;
  const int gp = k0 + p;
  const T* at = o.base + gr * o.r_stride + gp;
  if (o.vec && gr < o.rows_total && gp + 3 < K) {
#ifdef PS_CUDA_SIM
    require_aligned(at, 4 * sizeof(T), "global load");
    for (int e = 0; e < 4; ++e) out[e] = at[e];
#else
    if constexpr (sizeof(T) == 4) {
      const float4 v = *reinterpret_cast<const float4*>(at);
      out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(at);
      out[0] = static_cast<T>(v.x & 0xFFFF), out[1] = static_cast<T>(v.x >> 16);
      out[2] = static_cast<T>(v.y & 0xFFFF), out[3] = static_cast<T>(v.y >> 16);
    }
#endif
    return;
  }
  for (int e = 0; e < 4; ++e) out[e] = gr < o.rows_total && gp + e < K ? at[e] : T(0);
}

template <typename T>
static __device__ __forceinline__ void load_tile(const TileOperand<T>& o, int K, int k0, Staged<T>& regs) {
  if (o.k_stride == 1) {
#pragma unroll
    for (int q = 0; q < 4; ++q) load_chunk(o, K, k0, static_cast<int>(threadIdx.x) + q * kBlockThreads, regs.v + 4 * q);
    return;
  }
#pragma unroll
  for (int q = 0; q < 16; ++q) {
    const int e = static_cast<int>(threadIdx.x) + q * kBlockThreads;
    const int r = e & (kTileM - 1), p = e >> 7;  // 128 rows x 32 k
    const long long gr = o.r0 + r;
    const int gp = k0 + p;
    regs.v[q] = gr < o.rows_total && gp < K ? o.base[gr + static_cast<long long>(gp) * o.k_stride] : T(0);
  }
}

// The staged values into shared memory as bf16 (S[r][p], k-contiguous rows).
template <typename T>
static __device__ __forceinline__ void stage_tile(const TileOperand<T>& o, const Staged<T>& regs, uint16_t* S) {
  if (o.k_stride == 1) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int c = static_cast<int>(threadIdx.x) + q * kBlockThreads;
      const int r = c >> 3, p = (c & 7) * 4;
      const uint16_t h0 = stage_bf16(regs.v[4 * q]), h1 = stage_bf16(regs.v[4 * q + 1]),
                     h2 = stage_bf16(regs.v[4 * q + 2]), h3 = stage_bf16(regs.v[4 * q + 3]);
      uint16_t* s = S + r * kRowStride + p;
#ifdef PS_CUDA_SIM
      require_aligned(s, 8, "shared store");
      s[0] = h0, s[1] = h1, s[2] = h2, s[3] = h3;
#else
      // 8 bytes at an 8-byte boundary: rows are 80 bytes, p a multiple of 4
      *reinterpret_cast<uint2*>(s) = make_uint2(h0 | (static_cast<uint32_t>(h1) << 16), h2 | (static_cast<uint32_t>(h3) << 16));
#endif
    }
    return;
  }
#pragma unroll
  for (int q = 0; q < 16; ++q) {
    const int e = static_cast<int>(threadIdx.x) + q * kBlockThreads;
    S[(e & (kTileM - 1)) * kRowStride + (e >> 7)] = stage_bf16(regs.v[q]);
  }
}

// One block per SM at most 255 registers: the 32 prefetched values live
// beside the 64 accumulators without spilling.
template <bool kPortable, typename TB>
__global__ void __launch_bounds__(kBlockThreads, 1)
    gemm_bf16_prefetch_kernel(int M, int N, int K, float alpha, TileOperand<float> a, TileOperand<TB> b,
                              bool accumulate, float* C, long long ldc) {
  __shared__ __align__(16) uint16_t As[kTileM * kRowStride];
  __shared__ __align__(16) uint16_t Bs[kTileN * kRowStride];
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const int g = lane >> 2, tq = lane & 3;
  const int wm = (warp >> 2) * kWarpM, wn = (warp & 3) * kWarpN;
  a.r0 = static_cast<long long>(blockIdx.x) * kTileM;
  b.r0 = static_cast<long long>(blockIdx.y) * kTileN;
  const long long i0 = a.r0, j0 = b.r0;

  float acc[4][4][4];
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int x = 0; x < 4; ++x) acc[mi][ni][x] = 0.0f;
  int m_live, n_live;
  live_tiles(M, N, i0, j0, wm, wn, m_live, n_live);

  Staged<float> ra;
  Staged<TB> rb;
  load_tile(a, K, 0, ra);
  load_tile(b, K, 0, rb);
  for (int k0 = 0; k0 < K; k0 += kTileK) {
    stage_tile(a, ra, As);
    stage_tile(b, rb, Bs);
    __syncthreads();
    if (k0 + kTileK < K) {  // the next tile's loads fly while this one's products run
      load_tile(a, K, k0 + kTileK, ra);
      load_tile(b, K, k0 + kTileK, rb);
    }
    mma_tile<kPortable>(As, Bs, acc, wm, wn, g, tq, m_live, n_live);
    __syncthreads();
  }
  store_tile(acc, i0, j0, wm, wn, g, tq, M, N, alpha, accumulate, C, ldc);
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
  if (gemm_bf16_kernel_choice() == GemmBf16Kernel::kPrefetch) {
    // (r, p) strides of each side; 4-value loads where the base is aligned to
    // them and the other stride keeps every chunk aligned
    auto aligned = [](const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; };
    TileOperand<float> a{A, a_rs, a_cs, 0, M, false};
    TileOperand<TB> b{B, b_cs, b_rs, 0, N, false};
    a.vec = aligned(A, 4 * sizeof(float)) && (a_cs == 1 ? a_rs : a_cs) % 4 == 0;
    b.vec = aligned(B, 4 * sizeof(TB)) && (b_rs == 1 ? b_cs : b_rs) % 4 == 0;
    auto* kernel = path == MmaPath::kPortable ? &gemm_bf16_prefetch_kernel<true, TB> : &gemm_bf16_prefetch_kernel<false, TB>;
    PS_LAUNCH(kernel, grid, kBlockThreads, 0, 0)(M, N, K, alpha, a, b, beta != 0.0f, C, ldc);
  } else {
    auto* kernel = path == MmaPath::kPortable ? &gemm_bf16_kernel<true, TB> : &gemm_bf16_kernel<false, TB>;
    PS_LAUNCH(kernel, grid, kBlockThreads, 0, 0)(M, N, K, alpha, A, a_rs, a_cs, B, b_rs, b_cs, beta != 0.0f, C, ldc);
  }
  check_launch(op);
}

std::atomic<GemmBf16Kernel>& kernel_setting() {
  // PEFT_STUDIO_GEMM_BF16 (read once; set_gemm_bf16_kernel overrides). A
  // value that is neither is an error, as PEFT_STUDIO_GEMM's (the backend's
  // constructor asks first, so it shows before any work).
  static std::atomic<GemmBf16Kernel> setting{[] {
    const char* v = std::getenv("PEFT_STUDIO_GEMM_BF16");
    const std::string choice = v ? v : "";
    if (choice.empty() || choice == "simple") return GemmBf16Kernel::kSimple;
    if (choice == "prefetch") return GemmBf16Kernel::kPrefetch;
    throw Error("PEFT_STUDIO_GEMM_BF16=" + choice +
                " is not a bf16 GEMM kernel: use simple (the default) or prefetch, or leave it unset");
  }()};
  return setting;
}

}  // namespace

GemmBf16Kernel gemm_bf16_kernel_choice() { return kernel_setting().load(); }
void set_gemm_bf16_kernel(GemmBf16Kernel k) { kernel_setting().store(k); }

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
