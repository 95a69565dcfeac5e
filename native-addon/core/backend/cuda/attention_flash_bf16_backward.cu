// The bf16 attention backward on tensor cores (head dim <= 128): the same
// semantics as attention_flash.cu's BF16 backward (q, k, v, dout rounded to
// bf16; P = exp(s - lse) in fp32, rounded for P^T dO; dS = P (dP - delta)
// rounded for dS K and dS^T Q; fp32 accumulation), with every product on
// mma.sync m16n8k16 (mma_bf16.cuh). Only the fp32 summation order differs
// from the CUDA-core kernels. Two passes, no float atomics (deterministic):
//   dQ pass:   a block of 4 warps owns 64 queries of one (b, head), 16 per
//              warp, Q and dO as A fragments in registers; per 64-key tile
//              (K, V staged in shared memory): S = Q K^T, dP = dO V^T, dS,
//              dQ += dS K (dS repacked from the accumulators as A fragments);
//   dK/dV pass: a block owns 64 keys of one (b, kv head), K and V as A
//              fragments; it walks the group's query heads in order and
//              their query tiles (Q, dO staged; lse, delta, segments):
//              S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q.
// The delta kernel (attention_flash.cu) runs first.
#include "attention_flash.cuh"
#include "mma_bf16.cuh"

namespace ps {
namespace flash {

namespace {

template <int DMAX>
__global__ void __launch_bounds__(128)
    flash_dq_tc_kernel(FlashGeometry g, const float* __restrict__ q, const float* __restrict__ k,
                       const float* __restrict__ v, const int32_t* __restrict__ seg, const float* __restrict__ lse,
                       const float* __restrict__ dout, const float* __restrict__ delta, float* __restrict__ dq) {
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
  int row[2];
  int32_t seg_r[2];
  float lse_r[2], delta_r[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row[i] = t0 + warp * 16 + gr + 8 * i;
    seg_r[i] = row[i] < g.T ? seg_row[row[i]] : -1;
    const size_t stat = (static_cast<size_t>(b) * g.Hq + h) * g.T + row[i];
    lse_r[i] = seg_r[i] >= 0 ? lse[stat] : 0.0f;
    delta_r[i] = seg_r[i] >= 0 ? delta[stat] : 0.0f;
  }
  auto at = [&](const float* x, int i, int d) -> float {
    if (seg_r[i] < 0 || d >= g.D) return 0.0f;
    return x[((static_cast<size_t>(b) * g.T + row[i]) * g.Hq + h) * g.D + d];
  };
  uint32_t qa[C::kKSteps][4], da[C::kKSteps][4];  // A fragments of Q and dO
#pragma unroll
  for (int s = 0; s < C::kKSteps; ++s)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int col = s * 16 + 2 * tc + ((i & 2) ? 8 : 0);
      qa[s][i] = pack_bf16(at(q, i & 1, col), at(q, i & 1, col + 1));
      da[s][i] = pack_bf16(at(dout, i & 1, col), at(dout, i & 1, col + 1));
    }
  float acc[C::kDimTiles][4];
#pragma unroll
  for (int n = 0; n < C::kDimTiles; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;

  const int js_end = g.P + min(g.T, t0 + kTcRows);
  for (int j0 = 0; j0 < js_end; j0 += kTcKeys) {
    if (!stage_visible_key_tile<DMAX>(g, seg_row, j0, row, seg_r, b, kv, k, v, ks, vs, kcode)) continue;
    // S = Q K^T and dP = dO V^T: n-tile n holds keys 8n .. 8n + 7.
    float sc[8][4], dp[8][4];
    mma_rows_by_tile(qa, ks, sc);
    mma_rows_by_tile(da, vs, dp);
    // dS = P (dP - delta), rounded (kept in sc).
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = i >> 1, x = 8 * n + 2 * tc + (i & 1);
        const bool vis = sees(seg_r[r], row[r], kcode[x], j0 + x, g.P);
        const float p = vis ? expf(sc[n][i] * g.scale - lse_r[r]) : 0.0f;
        sc[n][i] = op<true>(p * (dp[n][i] - delta_r[r]));
      }
    // dQ += dS K: B[kk][nn] = K[key kk][dim nn].
    mma_acc_by_tile(sc, ks, acc);
    __syncthreads();  // ks, vs, kcode are overwritten next
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (seg_r[r] < 0) continue;  // padding or past T: no gradient
    float* dqr = dq + ((static_cast<size_t>(b) * g.T + row[r]) * g.Hq + h) * g.D;
#pragma unroll
    for (int n = 0; n < C::kDimTiles; ++n)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int d = 8 * n + 2 * tc + j;
        if (d < g.D) dqr[d] += g.scale * acc[n][2 * r + j];
      }
  }
#endif
}

template <int DMAX>
__global__ void __launch_bounds__(128)
    flash_dkv_tc_kernel(FlashGeometry g, const float* __restrict__ q, const float* __restrict__ k,
                        const float* __restrict__ v, const int32_t* __restrict__ seg, const float* __restrict__ lse,
                        const float* __restrict__ dout, const float* __restrict__ delta, float* __restrict__ dk,
                        float* __restrict__ dv) {
#if !PS_FLASH_TC_BODY
  __trap();  // never launched below sm_80 (attention_flash.cuh)
#else
  using C = TcConfig<DMAX>;
  // Query rows staged per step: fewer for D 128, where the K, V fragments and
  // the dK, dV accumulators already take many registers.
  constexpr int kQ = DMAX > 64 ? 32 : 64;
  __shared__ __align__(16) uint16_t qs[kQ][C::kStride];
  __shared__ __align__(16) uint16_t dos[kQ][C::kStride];
  __shared__ float lse_s[kQ], delta_s[kQ];
  __shared__ int32_t qseg[kQ];
  const int k_tiles = (g.S + kTcRows - 1) / kTcRows;
  const int tile = static_cast<int>(blockIdx.x % k_tiles);  // the first keys are seen most: they go first
  const int kv = static_cast<int>((blockIdx.x / k_tiles) % g.Hkv), b = static_cast<int>(blockIdx.x / k_tiles / g.Hkv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gr = lane >> 2, tc = lane & 3;
  const int j0 = tile * kTcRows;
  const int32_t* seg_row = seg + static_cast<size_t>(b) * g.T;
  int krow[2];
  int32_t code[2];
  bool live[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    krow[i] = j0 + warp * 16 + gr + 8 * i;
    code[i] = key_code(g, seg_row, krow[i]);
    live[i] = code[i] == kKeyPrefix || code[i] >= 0;
  }
  auto at = [&](const float* x, int i, int d) -> float {
    if (!live[i] || d >= g.D) return 0.0f;
    return x[((static_cast<size_t>(b) * g.S + krow[i]) * g.Hkv + kv) * g.D + d];
  };
  uint32_t ka[C::kKSteps][4], va[C::kKSteps][4];  // A fragments of K and V (rows: keys)
#pragma unroll
  for (int s = 0; s < C::kKSteps; ++s)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int col = s * 16 + 2 * tc + ((i & 2) ? 8 : 0);
      ka[s][i] = pack_bf16(at(k, i & 1, col), at(k, i & 1, col + 1));
      va[s][i] = pack_bf16(at(v, i & 1, col), at(v, i & 1, col + 1));
    }
  float dk_acc[C::kDimTiles][4], dv_acc[C::kDimTiles][4];
#pragma unroll
  for (int n = 0; n < C::kDimTiles; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) dk_acc[n][i] = dv_acc[n][i] = 0.0f;

  const int t_begin = j0 < g.P ? 0 : j0 - g.P;  // earlier queries see none of the block's keys
  for (int h = kv * g.rep; h < (kv + 1) * g.rep; ++h) {
    for (int tq = t_begin; tq < g.T; tq += kQ) {
      for (int x = threadIdx.x; x < kQ; x += blockDim.x) {
        const int t = tq + x;
        const int32_t id = t < g.T ? seg_row[t] : -1;
        qseg[x] = id;
        const size_t stat = (static_cast<size_t>(b) * g.Hq + h) * g.T + t;
        lse_s[x] = id >= 0 ? lse[stat] : 0.0f;
        delta_s[x] = id >= 0 ? delta[stat] : 0.0f;
      }
      __syncthreads();
      bool any = false;
      for (int x = 0; x < kQ; ++x)
        any = any || sees(qseg[x], tq + x, code[0], krow[0], g.P) || sees(qseg[x], tq + x, code[1], krow[1], g.P);
      if (!__syncthreads_or(any)) continue;
      for (int e = threadIdx.x; e < kQ * DMAX; e += blockDim.x) {
        const int r = e / DMAX, d = e % DMAX, t = tq + r;
        const bool in = d < g.D && t < g.T;
        const size_t off = ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D + d;
        qs[r][d] = in ? bf16_bits(q[off]) : 0;
        dos[r][d] = in ? bf16_bits(dout[off]) : 0;
      }
      __syncthreads();
      // S^T = K Q^T, dP^T = V dO^T: n-tile n holds queries tq + 8n .. + 7.
      float st[kQ / 8][4], dpt[kQ / 8][4];
      mma_rows_by_tile(ka, qs, st);
      mma_rows_by_tile(va, dos, dpt);
      // P^T (kept in st, rounded when packed) and dS^T rounded (kept in dpt).
#pragma unroll
      for (int n = 0; n < kQ / 8; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int r = i >> 1, x = 8 * n + 2 * tc + (i & 1);
          const bool vis = sees(qseg[x], tq + x, code[r], krow[r], g.P);
          const float p = vis ? expf(st[n][i] * g.scale - lse_s[x]) : 0.0f;
          st[n][i] = p;
          dpt[n][i] = op<true>(p * (dpt[n][i] - delta_s[x]));
        }
      // dV += P^T dO, dK += dS^T Q.
      mma_acc_by_tile(st, dos, dv_acc);
      mma_acc_by_tile(dpt, qs, dk_acc);
      __syncthreads();  // qs, dos, lse_s, delta_s, qseg are overwritten next
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!live[r]) continue;  // padding keys and rows past S: no gradient
    const size_t off = ((static_cast<size_t>(b) * g.S + krow[r]) * g.Hkv + kv) * g.D;
#pragma unroll
    for (int n = 0; n < C::kDimTiles; ++n)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int d = 8 * n + 2 * tc + j;
        if (d >= g.D) continue;
        if (dk) dk[off + d] += g.scale * dk_acc[n][2 * r + j];
        if (dv) dv[off + d] += dv_acc[n][2 * r + j];
      }
  }
#endif
}

template <int DMAX>
void launch(const FlashGeometry& g, const float* q, const float* k, const float* v, const int32_t* seg,
            const float* lse, const float* dout, const float* delta, float* dq, float* dk, float* dv) {
  if (dq) {
    const long long blocks = static_cast<long long>(g.B) * g.Hq * ((g.T + kTcRows - 1) / kTcRows);
    auto* kern = &flash_dq_tc_kernel<DMAX>;
    PS_LAUNCH(kern, grid_of(blocks, "attention_backward"), 32 * kTcWarps, 0, 0)
        (g, q, k, v, seg, lse, dout, delta, dq);
    cuda::check_launch("attention_backward (flash, bf16 tensor cores, dq)");
  }
  if (dk || dv) {
    const long long blocks = static_cast<long long>(g.B) * g.Hkv * ((g.S + kTcRows - 1) / kTcRows);
    auto* kern = &flash_dkv_tc_kernel<DMAX>;
    PS_LAUNCH(kern, grid_of(blocks, "attention_backward"), 32 * kTcWarps, 0, 0)
        (g, q, k, v, seg, lse, dout, delta, dk, dv);
    cuda::check_launch("attention_backward (flash, bf16 tensor cores, dk, dv)");
  }
}

}  // namespace

void backward_bf16_tensor_cores(const FlashGeometry& g, const float* q, const float* k, const float* v,
                                const int32_t* seg, const float* lse, const float* dout, const float* delta,
                                float* dq, float* dk, float* dv) {
  if (g.D <= 64)
    launch<64>(g, q, k, v, seg, lse, dout, delta, dq, dk, dv);
  else
    launch<128>(g, q, k, v, seg, lse, dout, delta, dq, dk, dv);
}

}  // namespace flash
}  // namespace ps
