// Shared pieces of the flash attention kernels (attention_flash.cu: fp32 and
// bf16 semantics on CUDA cores; attention_flash_bf16.cu and
// attention_flash_bf16_backward.cu: bf16 on tensor cores): the geometry, the
// key codes and visibility rule, bf16 rounding, fragment loads. Device helpers
// are inline: every .cu file compiles alone.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "../../quant/bf16_round.h"
#include "backend.h"
#include "cuda_common.cuh"
#include "error.h"
#include "mma_bf16.cuh"

namespace ps {
namespace flash {

struct FlashGeometry {
  int B, T, P, Hq, Hkv, D, S, rep;
  float scale;
};

inline FlashGeometry geometry(const AttnShape& s, float scale) {
  return FlashGeometry{s.B, s.T, s.P, s.Hq, s.Hkv, s.D, s.P + s.T, s.Hq / s.Hkv, scale};
}

// The query tile a block of a query-tiled kernel (forward, dQ) owns: blocks
// enumerate (tile, head, batch row), tile fastest, the last tiles (which see
// the most keys) first.
struct QueryTile {
  int tile, h, b, kv, t0;
  const int32_t* seg_row;  // the batch row's segment ids
};

__device__ inline QueryTile query_tile(const FlashGeometry& g, const int32_t* seg, int rows) {
  const int q_tiles = (g.T + rows - 1) / rows;
  QueryTile qt;
  qt.tile = q_tiles - 1 - static_cast<int>(blockIdx.x % q_tiles);
  qt.h = static_cast<int>((blockIdx.x / q_tiles) % g.Hq);
  qt.b = static_cast<int>(blockIdx.x / q_tiles / g.Hq);
  qt.kv = qt.h / g.rep;
  qt.t0 = qt.tile * rows;
  qt.seg_row = seg + static_cast<size_t>(qt.b) * g.T;
  return qt;
}

// bf16 precision is refused below compute capability 8.0
// (gemm_precision.cu), so the tensor-core kernels never run there: their
// bodies are left out of those architectures (a __trap() instead), which
// spares sm_75 builds minutes of compiling the unrolled portable product
// (500 s for attention_flash_bf16_backward.cu, review of session 5).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define PS_FLASH_TC_BODY 0
#else
#define PS_FLASH_TC_BODY 1
#endif

inline unsigned grid_of(long long blocks, const char* op) {
  if (blocks > 0x7fffffffLL) throw Error(std::string(op) + ": problem too large for one launch");
  return static_cast<unsigned>(blocks);
}

// A key's code in a shared segment tile: its segment id (>= 0), or:
constexpr int32_t kKeyPrefix = -2;   // a prefix key: every real query sees it
constexpr int32_t kKeyPadding = -1;  // padding: no query sees it
constexpr int32_t kKeyNone = -3;     // past the sequence

__device__ inline int32_t key_code(const FlashGeometry& g, const int32_t* seg_row, int js) {
  if (js < g.P) return kKeyPrefix;
  if (js >= g.S) return kKeyNone;
  const int32_t id = seg_row[js - g.P];
  return id >= 0 ? id : kKeyPadding;
}

// Query t (segment seg_t) sees key js (code c)? seg_t < 0: never.
__device__ inline bool sees(int32_t seg_t, int t, int32_t code, int js, int P) {
  if (seg_t < 0) return false;
  return code == kKeyPrefix || (code == seg_t && js - P <= t);
}

// bf16 bits of x, nearest even (quant/bf16_round.h: the CPU's rounding).
__device__ inline uint16_t bf16_bits(float x) { return bf16_bits_from_f32_bits(__float_as_uint(x)); }

// x rounded to bfloat16, as a float; identity unless BF16.
template <bool BF16>
__device__ inline float op(float x) {
  if (!BF16) return x;
  return __uint_as_float(static_cast<uint32_t>(bf16_bits(x)) << 16);
}

constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

// ---- tensor-core tiles (attention_flash_bf16*.cu) ----------------------------
// A block of kTcWarps warps owns 16 rows per warp; staged tiles of kTcKeys
// rows hold bf16 with rows padded by 16 bytes against bank conflicts.
constexpr int kTcWarps = 4;
constexpr int kTcRows = 16 * kTcWarps;
constexpr int kTcKeys = 64;

template <int DMAX>
struct TcConfig {
  static constexpr int kStride = DMAX + 8;  // bf16 values per shared row
  static constexpr int kKSteps = DMAX / 16;
  static constexpr int kDimTiles = DMAX / 8;
};

__device__ inline uint32_t pack_bf16(float lo, float hi) {
  return static_cast<uint32_t>(bf16_bits(lo)) | (static_cast<uint32_t>(bf16_bits(hi)) << 16);
}

// Two neighbouring bf16 of a shared row as one 32-bit fragment register
// (B fragments whose k index runs along the row).
__device__ inline uint32_t load_pair(const uint16_t* p) {
  uint32_t w;
  memcpy(&w, p, sizeof(w));
  return w;
}

// p[0] and the value one row (stride) below it: B fragments whose k index
// runs down a column.
__device__ inline uint32_t load_column_pair(const uint16_t* p, int stride) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[stride]) << 16);
}

// One key tile of the query-tiled tensor-core kernels (forward, dQ): the
// tile's key codes; whether any of the lane's two rows (row, seg_r) sees a
// key of it, block-uniform through __syncthreads_or (kcode is rewritten
// only after that barrier); if so, K and V staged as bf16, zeros past D and
// S, and true. Every thread of the block calls it.
template <int DMAX, int STRIDE>
__device__ inline bool stage_visible_key_tile(const FlashGeometry& g, const int32_t* seg_row, int j0,
                                              const int (&row)[2], const int32_t (&seg_r)[2], int b, int kv,
                                              const float* k, const float* v, uint16_t (*ks)[STRIDE],
                                              uint16_t (*vs)[STRIDE], int32_t* kcode) {
  if (threadIdx.x < kTcKeys) kcode[threadIdx.x] = key_code(g, seg_row, j0 + threadIdx.x);
  __syncthreads();
  bool any = false;
  for (int x = 0; x < kTcKeys; ++x)
    any = any || sees(seg_r[0], row[0], kcode[x], j0 + x, g.P) || sees(seg_r[1], row[1], kcode[x], j0 + x, g.P);
  if (!__syncthreads_or(any)) return false;
  for (int e = threadIdx.x; e < kTcKeys * DMAX; e += blockDim.x) {
    const int r = e / DMAX, d = e % DMAX, js = j0 + r;
    const bool in = d < g.D && js < g.S;
    const size_t off = ((static_cast<size_t>(b) * g.S + js) * g.Hkv + kv) * g.D + d;
    ks[r][d] = in ? bf16_bits(k[off]) : 0;
    vs[r][d] = in ? bf16_bits(v[off]) : 0;
  }
  __syncthreads();
  return true;
}

// The fragments of mma.sync m16n8k16 the tensor-core kernels build:
// an A fragment (16 rows x 16 k, rounded to bf16) from two accumulator
// n-tiles holding k 0..7 (lo) and 8..15 (hi): the accumulator layout is the
// A layout's halves, so P and dS become A operands without shared memory;
__device__ inline void a_from_accumulators(const float (&lo)[4], const float (&hi)[4], uint32_t (&a)[4]) {
  a[0] = pack_bf16(lo[0], lo[1]);
  a[1] = pack_bf16(lo[2], lo[3]);
  a[2] = pack_bf16(hi[0], hi[1]);
  a[3] = pack_bf16(hi[2], hi[3]);
}
// a B fragment whose k runs along a shared row (p = &tile[row][16 s + 2 tc]);
__device__ inline void b_along_row(const uint16_t* p, uint32_t (&b)[2]) {
  b[0] = load_pair(p);
  b[1] = load_pair(p + 8);
}
// a B fragment whose k runs down a column (p = &tile[k][d], rows `stride` apart).
__device__ inline void b_down_column(const uint16_t* p, int stride, uint32_t (&b)[2]) {
  b[0] = load_column_pair(p, stride);
  b[1] = load_column_pair(p + 8 * stride, stride);
}

// The two products the tensor-core kernels are made of, for the calling
// warp (g = lane / 4, t = lane % 4 as in mma_bf16.cuh):
// out[n] = A tile^T: n-tile n takes the tile's rows 8n .. 8n + 7 as its
// columns, k along the rows (S = Q K^T, dP = dO V^T and their transposes);
template <int kN, int kKSteps, int kStride>
__device__ inline void mma_rows_by_tile(const uint32_t (&a)[kKSteps][4], const uint16_t (*tile)[kStride],
                                        float (&out)[kN][4]) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int n = 0; n < kN; ++n) {
    out[n][0] = out[n][1] = out[n][2] = out[n][3] = 0.0f;
#pragma unroll
    for (int s = 0; s < kKSteps; ++s) {
      uint32_t b[2];
      b_along_row(&tile[8 * n + g][16 * s + 2 * t], b);
      cuda::mma_bf16_16816(out[n], a[s], b);
    }
  }
}
// acc[n] += P tile: P is accumulator n-tiles (2c, 2c + 1 the k chunk c,
// rounded as they become A fragments), k down the tile's rows, n-tile n its
// columns 8n .. 8n + 7 (O += P V, dQ += dS K, dV += P^T dO, dK += dS^T Q).
template <int kPTiles, int kDimTiles, int kStride>
__device__ inline void mma_acc_by_tile(const float (&p)[kPTiles][4], const uint16_t (*tile)[kStride],
                                       float (&acc)[kDimTiles][4]) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int c = 0; c < kPTiles / 2; ++c) {
    uint32_t a[4];
    a_from_accumulators(p[2 * c], p[2 * c + 1], a);
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) {
      uint32_t b[2];
      b_down_column(&tile[16 * c + 2 * t][8 * n + g], kStride, b);
      cuda::mma_bf16_16816(acc[n], a, b);
    }
  }
}

// attention_flash_bf16.cu: the bf16 forward on tensor cores (mma.sync
// m16n8k16, the portable emulation where there is no PTX) for D <= 128, with
// the bf16 semantics of attention_flash.cu's BF16 kernels.
// The PTX architecture of the tensor-core kernels' code on the current
// device (80 and up: built in; below: a build without architecture 80+ whose
// older code the driver runs, where those kernels are left out and trap);
// 0 when it cannot be asked.
int tensor_core_code_arch();

void forward_bf16_tensor_cores(const FlashGeometry& g, const float* q, const float* k, const float* v,
                               const int32_t* seg, float* out, float* lse);
// attention_flash_bf16_backward.cu: the bf16 backward (dQ pass, dK/dV pass)
// on tensor cores for D <= 128; delta = sum bf16(dout) * out is given.
void backward_bf16_tensor_cores(const FlashGeometry& g, const float* q, const float* k, const float* v,
                                const int32_t* seg, const float* lse, const float* dout, const float* delta,
                                float* dq, float* dk, float* dv);
constexpr int kTensorCoreMaxHeadDim = 128;

}  // namespace flash
}  // namespace ps
