// The bf16 attention forward on tensor cores (head dim <= 128): the same
// semantics as attention_flash.cu's BF16 forward (q, k, v rounded to bf16;
// S = Q K^T with fp32 accumulation; P = exp2(s log2e - M) with M the running
// row max rounded up to an integer, so every rescale is an exact power of two;
// P rounded to bf16 for P V; l sums the unrounded P; lse = ln2 (M + log2 l)),
// with both products on mma.sync m16n8k16 (mma_bf16.cuh; its warp-shuffle
// emulation in the simulator and below sm_80). Only the fp32 summation order
// differs from the CUDA-core kernel.
//
// A block of 4 warps owns 64 queries of one (b, head), 16 per warp; it walks
// 64-key tiles of K and V, rounded to bf16 while staged into shared memory
// (rows padded by 16 bytes against bank conflicts). Per warp and tile:
//   S (16 x 64) = Q (16 x D, A fragments kept in registers) . K^T, 8 n-tiles;
//   online softmax on the accumulator fragments (rows g and g + 8 of the
//   lane's quad; row max by a quad shuffle, l summed per lane and combined by
//   a quad butterfly at the end: a fixed order);
//   O (16 x D) += P (the S accumulators, rounded and repacked as A
//   fragments: no trip through shared memory) . V.
// Key tiles past the block's last query, and tiles in which no query of the
// block sees a key (segments), are skipped as in attention_flash.cu.
#include "attention_flash.cuh"
#include "mma_bf16.cuh"

namespace ps {
namespace flash {

namespace {

template <int DMAX>
__global__ void __launch_bounds__(128)
    flash_forward_tc_kernel(FlashGeometry g, const float* __restrict__ q, const float* __restrict__ k,
                            const float* __restrict__ v, const int32_t* __restrict__ seg, float* __restrict__ out,
                            float* __restrict__ lse) {
#if !PS_FLASH_TC_BODY
  __trap();  // never launched below sm_80 (attention_flash.cuh)
#else
  using C = TcConfig<DMAX>;
  __shared__ __align__(16) uint16_t ks[kTcKeys][C::kStride];
  __shared__ __align__(16) uint16_t vs[kTcKeys][C::kStride];
  __shared__ int32_t kcode[kTcKeys];
  const QueryTile qt = query_tile(g, seg, kTcRows);
  const int h = qt.h, b = qt.b, kv = qt.kv;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gr = lane >> 2, tc = lane & 3;
  const int t0 = qt.t0;
  const int32_t* seg_row = qt.seg_row;
  // The lane's two rows: fragment rows gr and gr + 8 of the warp's 16.
  int row[2];
  int32_t seg_r[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row[i] = t0 + warp * 16 + gr + 8 * i;
    seg_r[i] = row[i] < g.T ? seg_row[row[i]] : -1;
  }
  auto q_at = [&](int i, int d) -> float {
    if (seg_r[i] < 0 || d >= g.D) return 0.0f;
    return q[((static_cast<size_t>(b) * g.T + row[i]) * g.Hq + h) * g.D + d];
  };
  // A fragments of Q: a[0] rows gr, cols 2tc..; a[1] row gr + 8; a[2], a[3] cols + 8.
  uint32_t qa[C::kKSteps][4];
#pragma unroll
  for (int s = 0; s < C::kKSteps; ++s)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int col = s * 16 + 2 * tc + ((i & 2) ? 8 : 0);
      qa[s][i] = pack_bf16(q_at(i & 1, col), q_at(i & 1, col + 1));
    }
  float o[C::kDimTiles][4];
#pragma unroll
  for (int n = 0; n < C::kDimTiles; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  const int js_end = g.P + min(g.T, t0 + kTcRows);  // causal: later keys are invisible to the block
  for (int j0 = 0; j0 < js_end; j0 += kTcKeys) {
    if (!stage_visible_key_tile<DMAX>(g, seg_row, j0, row, seg_r, b, kv, k, v, ks, vs, kcode)) continue;

    // S = Q K^T: n-tile n holds keys 8n .. 8n + 7; B[kk][nn] = K[key nn][dim kk].
    float sc[8][4];
    mma_rows_by_tile(qa, ks, sc);
    // Scores in base 2, masked; the row max over the quad (exact: same bits everywhere).
    float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = i >> 1, x = 8 * n + 2 * tc + (i & 1);
        float s = sc[n][i] * g.scale;
        s *= kLog2e;
        if (!sees(seg_r[r], row[r], kcode[x], j0 + x, g.P)) s = -INFINITY;
        sc[n][i] = s;
        mt[r] = fmaxf(mt[r], s);
      }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mt[r] = fmaxf(mt[r], __shfl_xor_sync(0xffffffffu, mt[r], 1));
      mt[r] = fmaxf(mt[r], __shfl_xor_sync(0xffffffffu, mt[r], 2));
      const float m_new = fmaxf(m[r], ceilf(mt[r]));
      corr[r] = m_new == -INFINITY ? 1.0f : exp2f(m[r] - m_new);  // a power of two; 0 on the first visible tile
      m[r] = m_new;
      l[r] *= corr[r];
    }
#pragma unroll
    for (int n = 0; n < C::kDimTiles; ++n) {
      o[n][0] *= corr[0], o[n][1] *= corr[0];
      o[n][2] *= corr[1], o[n][3] *= corr[1];
    }
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = i >> 1;
        const float p = sc[n][i] == -INFINITY ? 0.0f : exp2f(sc[n][i] - m[r]);
        l[r] += p;
        sc[n][i] = p;
      }
    // O += P V: 16-key chunk c is S n-tiles 2c, 2c + 1; B[kk][nn] = V[key kk][dim nn].
    mma_acc_by_tile(sc, vs, o);
    __syncthreads();  // ks, vs, kcode are overwritten next
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    if (row[r] >= g.T) continue;
    const bool real = seg_r[r] >= 0;
    const float inv = real ? 1.0f / l[r] : 0.0f;  // l >= 0.5 for a real query: it sees itself
    float* orow = out + ((static_cast<size_t>(b) * g.T + row[r]) * g.Hq + h) * g.D;
#pragma unroll
    for (int n = 0; n < C::kDimTiles; ++n)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int d = 8 * n + 2 * tc + j;
        if (d < g.D) orow[d] = real ? o[n][2 * r + j] * inv : 0.0f;
      }
    if (tc == 0) lse[(static_cast<size_t>(b) * g.Hq + h) * g.T + row[r]] = real ? (m[r] + log2f(l[r])) * kLn2 : 0.0f;
  }
#endif
}

template <int DMAX>
void launch(const FlashGeometry& g, const float* q, const float* k, const float* v, const int32_t* seg, float* out,
            float* lse) {
  const long long blocks = static_cast<long long>(g.B) * g.Hq * ((g.T + kTcRows - 1) / kTcRows);
  auto* kern = &flash_forward_tc_kernel<DMAX>;
  PS_LAUNCH(kern, grid_of(blocks, "attention_forward"), 32 * kTcWarps, 0, 0)(g, q, k, v, seg, out, lse);
  cuda::check_launch("attention_forward (flash, bf16 tensor cores)");
}

}  // namespace

int tensor_core_code_arch() {
  // The kernel's code as loaded on this device: the PTX architecture it was
  // compiled from (the driver's JIT keeps it when no machine code matches).
  cudaFuncAttributes a{};
  if (cudaFuncGetAttributes(&a, &flash_forward_tc_kernel<64>) != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    return 0;
  }
  return a.ptxVersion;
}

void forward_bf16_tensor_cores(const FlashGeometry& g, const float* q, const float* k, const float* v,
                               const int32_t* seg, float* out, float* lse) {
  if (g.D <= 64)
    launch<64>(g, q, k, v, seg, out, lse);
  else
    launch<128>(g, q, k, v, seg, out, lse);
}

}  // namespace flash
}  // namespace ps
