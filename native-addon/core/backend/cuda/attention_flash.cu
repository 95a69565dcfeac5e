// Tiled ("flash") causal grouped-query attention, the CUDA backend's
// default attention (attention.cu chooses; attention_reference.cu is the
// readable version these kernels are tested against). Nothing of size T x S
// is stored: the forward keeps the log-sum-exp per query, the backward
// recomputes P = exp(s - lse).
//
// Layout of the work (FlashAttention-2's):
//  - forward and dQ: a block owns a tile of kRows queries of one (b, head);
//    it walks the key tiles (kTile keys of K and V staged in shared memory),
//    with the online softmax (running max m and sum l, fp32) for the forward;
//  - dK/dV: a block owns a tile of kRows keys of one (b, kv head); it walks
//    the query heads of the group in order, and for each the query tiles
//    (kTile rows of Q and dO, with lse and delta = rowsum(dO * out), staged in
//    shared memory). The rep query heads of a GQA group are summed inside the
//    block, in head order: no float atomics.
// So every sum runs in a fixed order: the results depend only on the inputs.
//
// A row (query or key) belongs to a group of TPQ neighbouring threads of one
// warp; thread c of the group holds dims c, c + TPQ, c + 2 TPQ, ... (kPer of
// them: TPQ consecutive threads read consecutive words of shared memory).
// A dot product is each thread's partial sum (dims in order) completed by an
// xor-butterfly over the group: every thread of the group gets the same bits
// (IEEE addition commutes), so the group decides every branch alike.
//
// Tiles are skipped when no pair in them is visible: key tiles past the last
// query of the block (causal), query tiles before the first key of the block,
// and any tile in which the segment ids leave nothing visible (packed rows:
// __syncthreads_or of each row's check). Visibility is the CPU's: query t of
// row b sees every prefix key (js < P) and key P + j iff j <= t and
// seg[b, j] == seg[b, t]; seg < 0 is padding (output 0, lse 0, no gradient).
//
// Shared tiles are zero-filled past D and past the sequence, so the inner
// loops need no bounds checks (a padding key inside a tile is masked by
// visibility; its K/V values are the caller's, as on the CPU).
//
// Precision: fp32 (BF16 = false) everywhere by default. bf16 attention
// (CudaBackend::set_attention_bf16 in bf16 GemmPrecision; BF16 = true here
// for D > 128, the tensor-core kernels of attention_flash_bf16.cu (forward)
// and attention_flash_bf16_backward.cu for D <= 128) rounds to
// bf16 (nearest even) exactly these values, as PyTorch's bf16 flash
// attention does, and keeps everything else fp32 (products accumulate in
// fp32, softmax statistics fp32):
//   q, k, v, dout          where they enter a product (staging / registers);
//   P before P.V           forward: P = exp2(s log2e - M), M the running row
//                          max rounded UP to an integer, so each rescale by
//                          exp2(M_old - M_new) is exact and P's rounding
//                          depends on the tiling only through the fp32
//                          rounding of s - M; l sums the unrounded P;
//                          lse = ln2 (M + log2 l);
//   P before P^T.dO        backward (P = exp(s - lse));
//   dS before dS.K, dS^T.Q backward (dS = P (dP - delta), delta = sum
//                          bf16(dout) * out in fp32).
// tests/bf16_reference_backend.h (round_attention) spells the same on the CPU.
#include <string>

#include "attention_flash.cuh"
#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

using namespace flash;

// Per head-dim class: DMAX (D rounded up to it), TPQ threads per row.
// Two fp32 tiles of kTile x DMAX are 32 KiB of static shared memory.
template <int DMAX, int TPQ>
struct FlashConfig {
  static constexpr int kThreads = 256;
  static constexpr int kPer = DMAX / TPQ;       // dims per thread
  static constexpr int kRows = kThreads / TPQ;  // rows owned by a block
  static constexpr int kTile = 4096 / DMAX < 64 ? 4096 / DMAX : 64;  // staged rows per step
  static_assert(32 % TPQ == 0, "a row's threads sit in one warp");
};

template <int N>
__device__ inline float group_sum(float v) {
#pragma unroll
  for (int o = N / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// rows [r0, r0 + ROWS) of x [B, L, H, D] at (b, head) into tile[ROWS][DMAX]
// (rounded to bf16 when BF16), zero past D and past L.
template <int ROWS, int DMAX, bool BF16>
__device__ inline void stage(float (*tile)[DMAX], const float* x, int b, int L, int H, int head, int D, int r0) {
  for (int e = threadIdx.x; e < ROWS * DMAX; e += blockDim.x) {
    const int r = e / DMAX, d = e % DMAX, row = r0 + r;
    tile[r][d] = (d < D && row < L) ? op<BF16>(x[((static_cast<size_t>(b) * L + row) * H + head) * D + d]) : 0.0f;
  }
}

template <int DMAX, int TPQ, bool BF16>
__global__ void __launch_bounds__(256)
    flash_forward_kernel(FlashGeometry g, const float* __restrict__ q, const float* __restrict__ k,
                         const float* __restrict__ v, const int32_t* __restrict__ seg, float* __restrict__ out,
                         float* __restrict__ lse) {
  using C = FlashConfig<DMAX, TPQ>;
  __shared__ float ks[C::kTile][DMAX];
  __shared__ float vs[C::kTile][DMAX];
  __shared__ int32_t kcode[C::kTile];
  const QueryTile qt = query_tile(g, seg, C::kRows);
  const int h = qt.h, b = qt.b, kv = qt.kv;
  const int c = threadIdx.x % TPQ, t0 = qt.t0, t = t0 + threadIdx.x / TPQ;
  const int32_t* seg_row = qt.seg_row;
  const int32_t seg_t = t < g.T ? seg_row[t] : -1;
  const size_t qoff = ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D;
  float qr[C::kPer], acc[C::kPer];
#pragma unroll
  for (int i = 0; i < C::kPer; ++i) {
    const int d = c + TPQ * i;
    qr[i] = (seg_t >= 0 && d < g.D) ? op<BF16>(q[qoff + d]) : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const int js_end = g.P + min(g.T, t0 + C::kRows);  // keys past the tile's last query: invisible
  for (int j0 = 0; j0 < js_end; j0 += C::kTile) {
    for (int x = threadIdx.x; x < C::kTile; x += blockDim.x) kcode[x] = key_code(g, seg_row, j0 + x);
    __syncthreads();
    bool any = false;
    for (int x = 0; x < C::kTile; ++x) any = any || sees(seg_t, t, kcode[x], j0 + x, g.P);
    if (!__syncthreads_or(any)) continue;  // block-uniform; kcode is rewritten only after this barrier
    stage<C::kTile, DMAX, BF16>(ks, k, b, g.S, g.Hkv, kv, g.D, j0);
    stage<C::kTile, DMAX, BF16>(vs, v, b, g.S, g.Hkv, kv, g.D, j0);
    __syncthreads();
    float s[C::kTile];
    float m_tile = -INFINITY;
#pragma unroll
    for (int x = 0; x < C::kTile; ++x) {
      float part = 0.0f;
#pragma unroll
      for (int i = 0; i < C::kPer; ++i) part += qr[i] * ks[x][c + TPQ * i];
      s[x] = group_sum<TPQ>(part) * g.scale;
      if (BF16) s[x] *= kLog2e;  // base 2 (see exp_p)
      if (!sees(seg_t, t, kcode[x], j0 + x, g.P)) s[x] = -INFINITY;
      m_tile = fmaxf(m_tile, s[x]);
    }
    if (m_tile > -INFINITY) {  // this row sees a key of the tile
      // bf16: the running max is an integer in base 2, so every rescale is
      // by a power of two and P's rounding does not depend on the tiling.
      const float m_new = fmaxf(m, BF16 ? ceilf(m_tile) : m_tile);
      const float corr = BF16 ? exp2f(m - m_new) : expf(m - m_new);  // 0 on the first visible tile (m = -inf)
      float psum = 0.0f;
#pragma unroll
      for (int i = 0; i < C::kPer; ++i) acc[i] *= corr;
#pragma unroll
      for (int x = 0; x < C::kTile; ++x) {
        const float p = BF16 ? exp2f(s[x] - m_new) : expf(s[x] - m_new);  // 0 where masked
        psum += p;
        const float pv = op<BF16>(p);
#pragma unroll
        for (int i = 0; i < C::kPer; ++i) acc[i] += pv * vs[x][c + TPQ * i];
      }
      l = l * corr + psum;
      m = m_new;
    } else {  // every score masked or NaN (fmaxf skips NaNs): a NaN makes the row NaN, as on the CPU
#pragma unroll
      for (int x = 0; x < C::kTile; ++x)
        if (s[x] != s[x]) l = s[x];  // l = NaN: carried to out (acc / l) and lse
    }
    __syncthreads();  // ks, vs, kcode are overwritten next
  }
  if (t >= g.T) return;
  float* o = out + qoff;
  const float inv = seg_t >= 0 ? 1.0f / l : 0.0f;  // l > 0: a real query sees itself (l >= 1 in fp32, >= 0.5 in bf16)
#pragma unroll
  for (int i = 0; i < C::kPer; ++i) {
    const int d = c + TPQ * i;
    if (d < g.D) o[d] = seg_t >= 0 ? acc[i] * inv : 0.0f;
  }
  const float row_lse = BF16 ? (m + log2f(l)) * kLn2 : m + logf(l);
  if (c == 0) lse[(static_cast<size_t>(b) * g.Hq + h) * g.T + t] = seg_t >= 0 ? row_lse : 0.0f;
}

// delta[b, h, t] = sum_d dout * out (0 for padding; dout rounded to bf16
// when BF16, as in dP): a warp per query.
template <bool BF16>
__global__ void flash_delta_kernel(FlashGeometry g, const int32_t* __restrict__ seg, const float* __restrict__ out,
                                   const float* __restrict__ dout, float* __restrict__ delta) {
  const long long w = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (w >= static_cast<long long>(g.B) * g.Hq * g.T) return;  // whole warps leave together
  const int lane = threadIdx.x & 31;
  const int t = static_cast<int>(w % g.T), h = static_cast<int>((w / g.T) % g.Hq), b = static_cast<int>(w / g.T / g.Hq);
  const size_t off = ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D;
  float s = 0.0f;
  if (seg[static_cast<size_t>(b) * g.T + t] >= 0)
    for (int d = lane; d < g.D; d += 32) s += op<BF16>(dout[off + d]) * out[off + d];
  s = cuda::warp_sum(s);
  if (lane == 0) delta[(static_cast<size_t>(b) * g.Hq + h) * g.T + t] = s;
}

// dQ += scale * sum_j dS_j k_j, dS = P (dO.v_j - delta): the forward's tiling.
template <int DMAX, int TPQ, bool BF16>
__global__ void __launch_bounds__(256)
    flash_dq_kernel(FlashGeometry g, const float* __restrict__ q, const float* __restrict__ k,
                    const float* __restrict__ v, const int32_t* __restrict__ seg, const float* __restrict__ lse,
                    const float* __restrict__ dout, const float* __restrict__ delta, float* __restrict__ dq) {
  using C = FlashConfig<DMAX, TPQ>;
  __shared__ float ks[C::kTile][DMAX];
  __shared__ float vs[C::kTile][DMAX];
  __shared__ int32_t kcode[C::kTile];
  const QueryTile qt = query_tile(g, seg, C::kRows);
  const int h = qt.h, b = qt.b, kv = qt.kv;
  const int c = threadIdx.x % TPQ, t0 = qt.t0, t = t0 + threadIdx.x / TPQ;
  const int32_t* seg_row = qt.seg_row;
  const int32_t seg_t = t < g.T ? seg_row[t] : -1;
  const size_t qoff = ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D;
  const size_t stat = (static_cast<size_t>(b) * g.Hq + h) * g.T + t;
  const float l_t = seg_t >= 0 ? lse[stat] : 0.0f, delta_t = seg_t >= 0 ? delta[stat] : 0.0f;
  float qr[C::kPer], dor[C::kPer], acc[C::kPer];
#pragma unroll
  for (int i = 0; i < C::kPer; ++i) {
    const int d = c + TPQ * i;
    const bool in = seg_t >= 0 && d < g.D;
    qr[i] = in ? op<BF16>(q[qoff + d]) : 0.0f;
    dor[i] = in ? op<BF16>(dout[qoff + d]) : 0.0f;
    acc[i] = 0.0f;
  }
  const int js_end = g.P + min(g.T, t0 + C::kRows);
  for (int j0 = 0; j0 < js_end; j0 += C::kTile) {
    for (int x = threadIdx.x; x < C::kTile; x += blockDim.x) kcode[x] = key_code(g, seg_row, j0 + x);
    __syncthreads();
    bool any = false;
    for (int x = 0; x < C::kTile; ++x) any = any || sees(seg_t, t, kcode[x], j0 + x, g.P);
    if (!__syncthreads_or(any)) continue;
    stage<C::kTile, DMAX, BF16>(ks, k, b, g.S, g.Hkv, kv, g.D, j0);
    stage<C::kTile, DMAX, BF16>(vs, v, b, g.S, g.Hkv, kv, g.D, j0);
    __syncthreads();
#pragma unroll 4
    for (int x = 0; x < C::kTile; ++x) {
      float sp = 0.0f, dp = 0.0f;
#pragma unroll
      for (int i = 0; i < C::kPer; ++i) {
        sp += qr[i] * ks[x][c + TPQ * i];
        dp += dor[i] * vs[x][c + TPQ * i];
      }
      sp = group_sum<TPQ>(sp);
      dp = group_sum<TPQ>(dp);
      if (!sees(seg_t, t, kcode[x], j0 + x, g.P)) continue;
      const float p = expf(sp * g.scale - l_t);
      const float ds = op<BF16>(p * (dp - delta_t));
#pragma unroll
      for (int i = 0; i < C::kPer; ++i) acc[i] += ds * ks[x][c + TPQ * i];
    }
    __syncthreads();
  }
  if (seg_t < 0) return;  // padding or past T: no gradient
#pragma unroll
  for (int i = 0; i < C::kPer; ++i) {
    const int d = c + TPQ * i;
    if (d < g.D) dq[qoff + d] += g.scale * acc[i];
  }
}

// dV += sum P_t dO_t, dK += scale * sum dS_t q_t over the group's query heads
// (in order) and the queries that see the key.
template <int DMAX, int TPQ, bool BF16>
__global__ void __launch_bounds__(256)
    flash_dkv_kernel(FlashGeometry g, const float* __restrict__ q, const float* __restrict__ k,
                     const float* __restrict__ v, const int32_t* __restrict__ seg, const float* __restrict__ lse,
                     const float* __restrict__ dout, const float* __restrict__ delta, float* __restrict__ dk,
                     float* __restrict__ dv) {
  using C = FlashConfig<DMAX, TPQ>;
  __shared__ float qs[C::kTile][DMAX];
  __shared__ float dos[C::kTile][DMAX];
  __shared__ float lse_s[C::kTile], delta_s[C::kTile];
  __shared__ int32_t qseg[C::kTile];
  const int k_tiles = (g.S + C::kRows - 1) / C::kRows;
  const int tile = static_cast<int>(blockIdx.x % k_tiles);  // the first keys are seen most: they go first
  const int kv = static_cast<int>((blockIdx.x / k_tiles) % g.Hkv), b = static_cast<int>(blockIdx.x / k_tiles / g.Hkv);
  const int c = threadIdx.x % TPQ, j0 = tile * C::kRows, js = j0 + threadIdx.x / TPQ;
  const int32_t* seg_row = seg + static_cast<size_t>(b) * g.T;
  const int32_t code = key_code(g, seg_row, js);
  const bool live = code == kKeyPrefix || code >= 0;
  const size_t koff = ((static_cast<size_t>(b) * g.S + js) * g.Hkv + kv) * g.D;
  float kr[C::kPer], vr[C::kPer], dk_acc[C::kPer], dv_acc[C::kPer];
#pragma unroll
  for (int i = 0; i < C::kPer; ++i) {
    const int d = c + TPQ * i;
    const bool in = live && d < g.D;
    kr[i] = in ? op<BF16>(k[koff + d]) : 0.0f;
    vr[i] = in ? op<BF16>(v[koff + d]) : 0.0f;
    dk_acc[i] = dv_acc[i] = 0.0f;
  }
  // Queries before the block's first real key see none of it (causal);
  // a block with prefix keys is seen from query 0.
  const int t_begin = j0 < g.P ? 0 : j0 - g.P;
  const bool want_dk = dk != nullptr;
  for (int h = kv * g.rep; h < (kv + 1) * g.rep; ++h) {
    for (int tq = t_begin; tq < g.T; tq += C::kTile) {
      for (int x = threadIdx.x; x < C::kTile; x += blockDim.x) {
        const int t = tq + x;
        const int32_t id = t < g.T ? seg_row[t] : -1;
        qseg[x] = id;
        const size_t stat = (static_cast<size_t>(b) * g.Hq + h) * g.T + t;
        lse_s[x] = id >= 0 ? lse[stat] : 0.0f;
        delta_s[x] = id >= 0 ? delta[stat] : 0.0f;
      }
      __syncthreads();
      bool any = false;
      for (int x = 0; x < C::kTile; ++x) any = any || sees(qseg[x], tq + x, code, js, g.P);
      if (!__syncthreads_or(any)) continue;
      stage<C::kTile, DMAX, BF16>(qs, q, b, g.T, g.Hq, h, g.D, tq);
      stage<C::kTile, DMAX, BF16>(dos, dout, b, g.T, g.Hq, h, g.D, tq);
      __syncthreads();
#pragma unroll 4
      for (int x = 0; x < C::kTile; ++x) {
        float sp = 0.0f, dp = 0.0f;
#pragma unroll
        for (int i = 0; i < C::kPer; ++i) {
          sp += kr[i] * qs[x][c + TPQ * i];
          if (want_dk) dp += vr[i] * dos[x][c + TPQ * i];
        }
        sp = group_sum<TPQ>(sp);
        if (want_dk) dp = group_sum<TPQ>(dp);
        if (!sees(qseg[x], tq + x, code, js, g.P)) continue;
        const float p = expf(sp * g.scale - lse_s[x]);
        const float ds = op<BF16>(p * (dp - delta_s[x]));
        const float pv = op<BF16>(p);
#pragma unroll
        for (int i = 0; i < C::kPer; ++i) {
          dv_acc[i] += pv * dos[x][c + TPQ * i];
          dk_acc[i] += ds * qs[x][c + TPQ * i];
        }
      }
      __syncthreads();
    }
  }
  if (!live) return;  // padding keys and rows past S: no gradient
#pragma unroll
  for (int i = 0; i < C::kPer; ++i) {
    const int d = c + TPQ * i;
    if (d >= g.D) continue;
    if (dk) dk[koff + d] += g.scale * dk_acc[i];
    if (dv) dv[koff + d] += dv_acc[i];
  }
}

template <int DMAX, int TPQ, bool BF16>
void run_forward(const FlashGeometry& g, const float* q, const float* k, const float* v, const int32_t* seg,
                 float* out, float* lse) {
  using C = FlashConfig<DMAX, TPQ>;
  const long long blocks = static_cast<long long>(g.B) * g.Hq * ((g.T + C::kRows - 1) / C::kRows);
  auto* kern = &flash_forward_kernel<DMAX, TPQ, BF16>;
  PS_LAUNCH(kern, grid_of(blocks, "attention_forward"), C::kThreads, 0, 0)(g, q, k, v, seg, out, lse);
  cuda::check_launch("attention_forward (flash)");
}

template <int DMAX, int TPQ, bool BF16>
void run_backward(const FlashGeometry& g, const float* q, const float* k, const float* v, const int32_t* seg,
                  const float* lse, const float* dout, const float* delta, float* dq, float* dk, float* dv) {
  using C = FlashConfig<DMAX, TPQ>;
  if (dq) {
    const long long blocks = static_cast<long long>(g.B) * g.Hq * ((g.T + C::kRows - 1) / C::kRows);
    auto* kern = &flash_dq_kernel<DMAX, TPQ, BF16>;
    PS_LAUNCH(kern, grid_of(blocks, "attention_backward"), C::kThreads, 0, 0)(g, q, k, v, seg, lse, dout, delta, dq);
    cuda::check_launch("attention_backward (flash, dq)");
  }
  if (dk || dv) {
    const long long blocks = static_cast<long long>(g.B) * g.Hkv * ((g.S + C::kRows - 1) / C::kRows);
    auto* kern = &flash_dkv_kernel<DMAX, TPQ, BF16>;
    PS_LAUNCH(kern, grid_of(blocks, "attention_backward"), C::kThreads, 0, 0)
        (g, q, k, v, seg, lse, dout, delta, dk, dv);
    cuda::check_launch("attention_backward (flash, dk, dv)");
  }
}

template <bool BF16>
void forward(const FlashGeometry& g, const float* q, const float* k, const float* v, const int32_t* seg, float* out,
             float* lse) {
  if (g.D <= 64)
    run_forward<64, 4, BF16>(g, q, k, v, seg, out, lse);
  else if (g.D <= 128)
    run_forward<128, 4, BF16>(g, q, k, v, seg, out, lse);
  else
    run_forward<256, 8, BF16>(g, q, k, v, seg, out, lse);
}

template <bool BF16>
void backward(const FlashGeometry& g, const float* q, const float* k, const float* v, const int32_t* seg,
              const float* out, const float* lse, const float* dout, float* delta, float* dq, float* dk, float* dv) {
  const long long rows = static_cast<long long>(g.B) * g.Hq * g.T;
  auto* delta_kernel = &flash_delta_kernel<BF16>;
  PS_LAUNCH(delta_kernel, grid_of((rows * 32 + 255) / 256, "attention_backward"), 256, 0, 0)(g, seg, out, dout, delta);
  cuda::check_launch("attention_backward (flash, delta)");
  if (BF16 && g.D <= kTensorCoreMaxHeadDim)
    backward_bf16_tensor_cores(g, q, k, v, seg, lse, dout, delta, dq, dk, dv);  // attention_flash_bf16_backward.cu
  else if (g.D <= 64)
    run_backward<64, 4, BF16>(g, q, k, v, seg, lse, dout, delta, dq, dk, dv);
  else if (g.D <= 128)
    run_backward<128, 4, BF16>(g, q, k, v, seg, lse, dout, delta, dq, dk, dv);
  else
    run_backward<256, 8, BF16>(g, q, k, v, seg, lse, dout, delta, dq, dk, dv);
}

}  // namespace

void CudaBackend::attention_forward_flash(const AttnShape& s, const float* q, const float* k, const float* v,
                                          const int32_t* seg, float scale, float* out, float* lse) {
  const flash::FlashGeometry g = flash::geometry(s, scale);
  if (attention_rounds_bf16() && g.D <= flash::kTensorCoreMaxHeadDim)
    flash::forward_bf16_tensor_cores(g, q, k, v, seg, out, lse);  // attention_flash_bf16.cu
  else if (attention_rounds_bf16())
    forward<true>(g, q, k, v, seg, out, lse);
  else
    forward<false>(g, q, k, v, seg, out, lse);
}

void CudaBackend::attention_backward_flash(const AttnShape& s, const float* q, const float* k, const float* v,
                                           const int32_t* seg, float scale, const float* out, const float* lse,
                                           const float* dout, float* dq, float* dk, float* dv) {
  const flash::FlashGeometry g = flash::geometry(s, scale);
  const size_t rows = static_cast<size_t>(g.B) * g.Hq * g.T;
  float* delta = static_cast<float*>(scratch(Scratch::Attention, rows * sizeof(float)));
  if (attention_rounds_bf16())
    backward<true>(g, q, k, v, seg, out, lse, dout, delta, dq, dk, dv);
  else
    backward<false>(g, q, k, v, seg, out, lse, dout, delta, dq, dk, dv);
}

}  // namespace ps
