// Fused GEMVs against stored weights (weight_gemv.h): the decode path of
// nf4_gemm_nt / half_gemm_nt (and of gemm_nt with a few rows).
//
// A block of 8 warps owns 16 consecutive output rows n (2 per warp) and walks
// K in slices of 1024: the block stages x[0..M)[slice] in shared memory
// (rounded to bf16 in bf16 precision), then each lane takes a fixed group
// of the slice's k values for both of its warp's rows:
//   NF4    32 consecutive values = one 16-byte load of codes per row,
//   16-bit 4 x 8 values (4 x 16 bytes; the warp's loads are contiguous),
//   fp32   8 x 4 values (8 x 16 bytes);
// (the warp's 16-byte loads cover 512 contiguous bytes of the row: coalesced)
// dequantizes / widens them in registers exactly as the dequantize kernels do,
// and adds x * w into 2 x M fp32 accumulators with fused multiply-adds (8 or
// 4 values at a time, so few registers hold decoded values). A slice's weight
// reads are issued before x is staged, so their latency overlaps it. The
// order of every sum is fixed (slices, groups, values in order; then the
// warp's xor tree), so the result depends only on the inputs and the shape:
// the scalar fallback for unaligned rows and the row's tail reads the same
// values into the same registers.
//
// Shared x rows are padded by 4 floats after every 32, so the lanes' 16-byte
// reads (strides of 128, 32 or 16 bytes) hit distinct banks.
#include <cstdint>
#include <cstring>
#include <string>

#include "../../model/half.h"
#include "../../quant/bf16_round.h"
#include "cuda_backend.h"
#include "cuda_common.cuh"
#include "nf4_device.cuh"
#include "quant/nf4_tables.h"
#include "weight_gemv.h"

namespace ps {
namespace cuda {

namespace {

// 16 rows a block share each staged slice of x (read from L2 once per block:
// with fewer rows that traffic nears the NF4 weight's own).
constexpr int kGemvWarps = 8, kGemvThreads = 32 * kGemvWarps, kRowsPerWarp = 2;
constexpr int kRowsPerBlock = kGemvWarps * kRowsPerWarp;
constexpr int kSlice = 1024;                   // k values per shared stage (32 lanes x 32)
constexpr int kPaddedSlice = kSlice + kSlice / 8;  // + 4 floats after every 32

static __device__ __forceinline__ int padded(int k) { return k + 4 * (k >> 5); }

// 16-byte loads: the hardware's vector types on the GPU; the simulator
// (plain C++) copies the bytes.
#ifdef PS_CUDA_SIM
struct Words4 {
  uint32_t x, y, z, w;
};
struct Floats4 {
  float x, y, z, w;
};
static inline Words4 load_words4(const void* p) {
  Words4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
static inline Floats4 load_floats4(const float* p) { return {p[0], p[1], p[2], p[3]}; }
#else
using Words4 = uint4;
using Floats4 = float4;
static __device__ __forceinline__ uint4 load_words4(const void* p) { return __ldg(static_cast<const uint4*>(p)); }
static __device__ __forceinline__ float4 load_floats4(const float* p) { return *reinterpret_cast<const float4*>(p); }
#endif

// The 16 bytes at p into words[0..3] when `load` (a whole aligned group),
// else zeros (the row's tail is then read value by value in decode).
static __device__ __forceinline__ void load_group(uint32_t (&words)[4], const void* p, bool load) {
  words[0] = words[1] = words[2] = words[3] = 0;
  if (!load) return;
  const Words4 q = load_words4(p);
  words[0] = q.x;
  words[1] = q.y;
  words[2] = q.z;
  words[3] = q.w;
}

static __device__ __forceinline__ bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

static __device__ __forceinline__ float to_bf16_value(float v) {
  return __uint_as_float(static_cast<uint32_t>(bf16_bits_from_f32_bits(__float_as_uint(v))) << 16);
}

// ---- the row readers. Each lane owns groups of kGroup consecutive values of
// a row; load(n, K, k, vec) issues the memory reads of the group starting at
// column k (the 16 bytes, and NF4's block scales) into a Raw, early, so their
// latency overlaps the staging of x; decode(raw, .., part, w) then gives the
// exact fp32 values of the group's part-th kPart values (0 past K). `vec`:
// the row's storage starts on a 16-byte boundary, so a whole group is one
// 16-byte load; otherwise (and for the group holding the row's end) decode
// reads the same values one by one.

struct Nf4Rows {
  static constexpr int kGroup = 32, kGroups = 1, kPart = 8;  // kGroup * kGroups * 32 == kSlice
  struct Raw {
    uint32_t words[4];
    float s0, s1;  // the absmax of the group's first block, and of the next
    int split;     // values [0, split) lie in the first block
  };
  Nf4Args a;
  float table[16];
  int block_shift;  // log2(blocksize): blocksize is a power of two >= 32

  __device__ void init(float* lut) const {
    if (threadIdx.x < 16) lut[threadIdx.x] = table[threadIdx.x];
  }
  // Whether row n's codes start on a 16-byte boundary (then every group's do).
  __device__ bool vector_row(long long n, int K) const {
    const long long e = n * K;
    return (e & 1) == 0 && aligned16(a.codes + (e >> 1));
  }
  __device__ Raw load(long long n, int K, int k, bool vec) const {
    Raw raw;
    raw.s0 = raw.s1 = 0.0f;
    raw.split = kGroup;
    const int valid = K - k;
    load_group(raw.words, nullptr, false);
    if (valid <= 0) return raw;
    const long long e0 = n * K + k;
    // A group of 32 lies in at most two blocks (blocksize >= 32).
    const long long b0 = e0 >> block_shift;
    raw.split = static_cast<int>(((b0 + 1) << block_shift) - e0);
    raw.s0 = nf4_block_scale(a, b0);
    raw.s1 = raw.split < kGroup && raw.split < valid ? nf4_block_scale(a, b0 + 1) : raw.s0;
    load_group(raw.words, a.codes + (e0 >> 1), vec && valid >= kGroup);
    return raw;
  }
  __device__ void decode(const Raw& raw, long long n, int K, int k, int part, bool vec, const float* lut,
                         float (&w)[kPart]) const {
    const int valid = K - k, j0 = part * kPart;
    if (vec && valid >= kGroup) {
      // Bytes 4 part .. 4 part + 3: the high nibble is the even value.
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint32_t byte = (raw.words[part] >> (8 * i)) & 0xFFu;
        const int j = j0 + 2 * i;
        w[2 * i] = nf4_value(lut, static_cast<int>(byte >> 4), j < raw.split ? raw.s0 : raw.s1);
        w[2 * i + 1] = nf4_value(lut, static_cast<int>(byte & 0x0Fu), j + 1 < raw.split ? raw.s0 : raw.s1);
      }
    } else {
      const long long e0 = n * K + k;
#pragma unroll
      for (int i = 0; i < kPart; ++i) {
        const int j = j0 + i;
        w[i] = j < valid ? nf4_value(lut, nf4_code(a, e0 + j), j < raw.split ? raw.s0 : raw.s1) : 0.0f;
      }
    }
  }
};

struct HalfRows {
  static constexpr int kGroup = 8, kGroups = 4, kPart = 8;
  struct Raw {
    uint32_t words[4];
  };
  const uint16_t* data;
  long long cols;
  bool bf16;

  __device__ void init(float*) const {}
  __device__ bool vector_row(long long n, int) const { return aligned16(data + n * cols); }
  __device__ float widen(uint32_t h) const {
    return bf16 ? __uint_as_float(h << 16) : __uint_as_float(f16_to_f32_bits(static_cast<uint16_t>(h)));
  }
  __device__ Raw load(long long n, int K, int k, bool vec) const {
    Raw raw;
    load_group(raw.words, data + n * cols + k, vec && K - k >= kGroup);
    return raw;
  }
  __device__ void decode(const Raw& raw, long long n, int K, int k, int, bool vec, const float*,
                         float (&w)[kPart]) const {
    const int valid = K - k;
    if (vec && valid >= kGroup) {
#pragma unroll
      for (int i = 0; i < kPart; ++i) w[i] = widen((raw.words[i >> 1] >> (16 * (i & 1))) & 0xFFFFu);
    } else {
      const uint16_t* p = data + n * cols + k;
#pragma unroll
      for (int i = 0; i < kPart; ++i) w[i] = i < valid ? widen(p[i]) : 0.0f;
    }
  }
};

struct F32Rows {
  static constexpr int kGroup = 4, kGroups = 8, kPart = 4;
  struct Raw {
    uint32_t words[4];
  };
  const float* data;
  long long ld;

  __device__ void init(float*) const {}
  __device__ bool vector_row(long long n, int) const { return aligned16(data + n * ld); }
  __device__ Raw load(long long n, int K, int k, bool vec) const {
    Raw raw;
    load_group(raw.words, data + n * ld + k, vec && K - k >= kGroup);
    return raw;
  }
  __device__ void decode(const Raw& raw, long long n, int K, int k, int, bool vec, const float*,
                         float (&w)[kPart]) const {
    const int valid = K - k;
    if (vec && valid >= kGroup) {
#pragma unroll
      for (int i = 0; i < kPart; ++i) w[i] = __uint_as_float(raw.words[i]);
    } else {
      const float* p = data + n * ld + k;
#pragma unroll
      for (int i = 0; i < kPart; ++i) w[i] = i < valid ? p[i] : 0.0f;
    }
  }
};

template <int kMaxM, bool kBf16, class Rows>
__global__ void __launch_bounds__(kGemvThreads)
    gemv_kernel(int M, int N, int K, float alpha, const float* __restrict__ X, long long ldx, Rows rows,
                bool accumulate, float* Y, long long ldy) {
  constexpr int kG = Rows::kGroup, kP = Rows::kPart;
  static_assert(kG % kP == 0 && kP % 4 == 0 && 32 % kG == 0 && kG * Rows::kGroups * 32 == kSlice,
                "a slice is the 32 lanes' groups; a group never crosses a padding gap");
  __shared__ __align__(16) float xs[kMaxM * kPaddedSlice];
  __shared__ float lut[16];
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  rows.init(lut);  // visible after the first barrier below

  long long row[kRowsPerWarp];
  bool live[kRowsPerWarp], vec[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    row[r] = static_cast<long long>(blockIdx.x) * kRowsPerBlock + warp * kRowsPerWarp + r;
    live[r] = row[r] < N;
    vec[r] = live[r] && rows.vector_row(row[r], K);
  }
  float acc[kRowsPerWarp][kMaxM];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
    for (int m = 0; m < kMaxM; ++m) acc[r][m] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += kSlice) {
    // This slice's weight reads first: in flight while x is staged.
    typename Rows::Raw raw[kRowsPerWarp][Rows::kGroups];
#pragma unroll
    for (int g = 0; g < Rows::kGroups; ++g)
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r)
        if (live[r]) raw[r][g] = rows.load(row[r], K, k0 + (g * 32 + lane) * kG, vec[r]);
    __syncthreads();  // every warp is done with the previous slice
    for (int e = t; e < M * kSlice; e += kGemvThreads) {
      const int m = e / kSlice, k = e % kSlice;
      float v = k0 + k < K ? X[m * ldx + k0 + k] : 0.0f;
      if (kBf16) v = to_bf16_value(v);
      xs[m * kPaddedSlice + padded(k)] = v;
    }
    __syncthreads();
    if (!live[0]) continue;  // uniform per warp (its rows are past N); it still meets the barriers
#pragma unroll
    for (int g = 0; g < Rows::kGroups; ++g) {
      const int kk = (g * 32 + lane) * kG;  // this lane's group in the slice
#pragma unroll
      for (int part = 0; part < kG / kP; ++part) {
        float w[kRowsPerWarp][kP];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
          if (live[r]) {
            rows.decode(raw[r][g], row[r], K, k0 + kk, part, vec[r], lut, w[r]);
          } else {
#pragma unroll
            for (int i = 0; i < kP; ++i) w[r][i] = 0.0f;
          }
          if (kBf16) {
#pragma unroll
            for (int i = 0; i < kP; ++i) w[r][i] = to_bf16_value(w[r][i]);
          }
        }
#pragma unroll
        for (int m = 0; m < kMaxM; ++m) {
          if (m >= M) break;
          const float* xp = xs + m * kPaddedSlice + padded(kk) + part * kP;
#pragma unroll
          for (int i = 0; i < kP; i += 4) {
            const Floats4 x4 = load_floats4(xp + i);
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
              acc[r][m] = __fmaf_rn(x4.x, w[r][i], acc[r][m]);
              acc[r][m] = __fmaf_rn(x4.y, w[r][i + 1], acc[r][m]);
              acc[r][m] = __fmaf_rn(x4.z, w[r][i + 2], acc[r][m]);
              acc[r][m] = __fmaf_rn(x4.w, w[r][i + 3], acc[r][m]);
            }
          }
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    if (!live[r]) continue;  // uniform per warp: the shuffles below see all 32 lanes
#pragma unroll
    for (int m = 0; m < kMaxM; ++m) {
      if (m >= M) break;
      const float s = warp_sum(acc[r][m]);  // xor tree: every lane gets the same bits
      if (lane == 0) {
        float* y = Y + m * ldy + row[r];
        *y = accumulate ? *y + alpha * s : alpha * s;
      }
    }
  }
}

template <int kMaxM, bool kBf16, class Rows>
void launch_bucket(const char* op, int M, int N, int K, float alpha, const float* X, int ldx, const Rows& rows,
                   float beta, float* Y, int ldy) {
  auto* kernel = &gemv_kernel<kMaxM, kBf16, Rows>;
  const unsigned blocks = static_cast<unsigned>((static_cast<long long>(N) + kRowsPerBlock - 1) / kRowsPerBlock);
  PS_LAUNCH(kernel, blocks, kGemvThreads, 0, 0)(M, N, K, alpha, X, ldx, rows, beta != 0.0f, Y, ldy);
  check_launch(op);
}

// The kernel for M's bucket (1, 2, 4, 8 rows of accumulators) and precision.
template <class Rows>
void launch(const char* op, int M, int N, int K, float alpha, const float* X, int ldx, const Rows& rows, float beta,
            float* Y, int ldy, bool bf16) {
  static_assert(kGemvMaxRows == 8, "the buckets below cover 1..8 rows");
  if (N <= 0) return;  // nothing to write (K == 0 writes alpha * 0 + beta * Y, as the GEMMs do)
  if (M <= 1) {
    if (bf16) launch_bucket<1, true>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
    else launch_bucket<1, false>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
  } else if (M <= 2) {
    if (bf16) launch_bucket<2, true>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
    else launch_bucket<2, false>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
  } else if (M <= 4) {
    if (bf16) launch_bucket<4, true>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
    else launch_bucket<4, false>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
  } else {
    if (bf16) launch_bucket<8, true>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
    else launch_bucket<8, false>(op, M, N, K, alpha, X, ldx, rows, beta, Y, ldy);
  }
}

void check_rows(const char* op, int M) {
  if (M < 1 || M > kGemvMaxRows)
    throw Error(std::string(op) + ": the GEMV takes 1.." + std::to_string(kGemvMaxRows) + " rows, got " +
                std::to_string(M));
}

}  // namespace

void gemv_nf4_nt(int M, const float* X, int ldx, const Nf4Weight& W, float alpha, float beta, float* Y, int ldy,
                 bool bf16) {
  check_rows("nf4_gemm_nt (GEMV)", M);
  Nf4Rows rows;
  rows.a = nf4_args_of(W);
  std::memcpy(rows.table, nf4_code_table(), sizeof rows.table);
  rows.block_shift = 0;
  while ((1LL << rows.block_shift) < W.blocksize) ++rows.block_shift;
  if ((1LL << rows.block_shift) != W.blocksize || W.blocksize < Nf4Rows::kGroup)
    throw Error("nf4_gemm_nt (GEMV): blocksize " + std::to_string(W.blocksize) +
                " is not a power of two of at least 32");
  launch("nf4_gemm_nt (GEMV)", M, static_cast<int>(W.rows), static_cast<int>(W.cols), alpha, X, ldx, rows, beta, Y,
         ldy, bf16);
}

void gemv_half_nt(int M, const float* X, int ldx, const HalfWeight& W, float alpha, float beta, float* Y, int ldy,
                  bool bf16) {
  check_rows("half_gemm_nt (GEMV)", M);
  HalfRows rows;
  rows.data = W.data;
  rows.cols = W.cols;
  rows.bf16 = W.bf16;
  launch("half_gemm_nt (GEMV)", M, W.rows, W.cols, alpha, X, ldx, rows, beta, Y, ldy, bf16);
}

void gemv_f32_nt(int M, int N, int K, float alpha, const float* X, int ldx, const float* W, int ldw, float beta,
                 float* Y, int ldy, bool bf16) {
  check_rows("gemm_nt (GEMV)", M);
  F32Rows rows;
  rows.data = W;
  rows.ld = ldw;
  launch("gemm_nt (GEMV)", M, N, K, alpha, X, ldx, rows, beta, Y, ldy, bf16);
}

}  // namespace cuda
}  // namespace ps
