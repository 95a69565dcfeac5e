// The reference attention kernels of the CUDA backend (attention.cu picks
// them with PEFT_STUDIO_ATTENTION=reference or set_attention_kernels; the
// default is the tiled flash kernels of attention_flash.cu, which the tests
// compare with these). Correctness first: one warp per query (forward, dQ)
// or per key (dK/dV), the head dim spread over the 32 lanes (up to 8 values
// per lane: D <= 256), dot products summed with a fixed shuffle tree.
// Nothing of size T x S is stored: forward keeps the
// log-sum-exp per query; backward recomputes P = exp(s - lse) like the CPU
// backend, in two passes that need no float atomics (deterministic):
//   pass 1, per query:  delta = rowsum(dO * out);  dQ += scale * sum_j dS_j k_j
//   pass 2, per key:    dV += sum_t P_t dO_t;  dK += scale * sum_t dS_t q_t
// with dS = P (dO.v - delta). Visibility is the CPU's: a query t of row b
// sees every prefix key (js < P) and the real key P + j iff j <= t and
// seg[b, j] == seg[b, t]; seg < 0 marks padding (output 0, lse 0, no gradient).
#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

constexpr int kMaxPerLane = 8;  // D <= 256
constexpr int kWarps = 4;       // warps per block

struct Geometry {
  int B, T, P, Hq, Hkv, D, S, rep;
  float scale;
};

// Loads a D-vector spread over the lanes: element lane + 32 k.
__device__ inline void load_row(const float* src, int D, float* r) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    r[k] = d < D ? src[d] : 0.0f;
  }
}

__device__ inline float dot_row(const float* r, const float* src, int D) {
  const int lane = threadIdx.x & 31;
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < kMaxPerLane; ++k) {
    const int d = lane + 32 * k;
    if (d < D) s += r[k] * src[d];
  }
  return cuda::warp_sum(s);
}

__device__ inline bool visible(const int32_t* seg_row, int P, int t, int js, int32_t seg_t) {
  if (js < P) return true;
  const int j = js - P;
  return j <= t && seg_row[j] == seg_t;
}

// Warp w -> (b, h, t), t fastest, so neighbouring warps read the same keys.
__global__ void attention_forward_kernel(Geometry g, const float* q, const float* k, const float* v,
                                         const int32_t* seg, float* out, float* lse) {
  const long long w = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (w >= static_cast<long long>(g.B) * g.Hq * g.T) return;
  const int lane = threadIdx.x & 31;
  const int t = static_cast<int>(w % g.T), h = static_cast<int>((w / g.T) % g.Hq), b = static_cast<int>(w / g.T / g.Hq);
  const int kv = h / g.rep;
  const int32_t* seg_row = seg + static_cast<size_t>(b) * g.T;
  const int32_t seg_t = seg_row[t];
  float* o = out + ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D;
  float* l_out = lse + (static_cast<size_t>(b) * g.Hq + h) * g.T + t;
  if (seg_t < 0) {  // padding query: output 0, lse 0 (a finite placeholder)
    for (int d = lane; d < g.D; d += 32) o[d] = 0.0f;
    if (lane == 0) *l_out = 0.0f;
    return;
  }
  float qr[kMaxPerLane], acc[kMaxPerLane];
  load_row(q + ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D, g.D, qr);
#pragma unroll
  for (int x = 0; x < kMaxPerLane; ++x) acc[x] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const int js_end = g.P + t + 1;  // keys past the query are never visible
  for (int js = 0; js < js_end; ++js) {
    if (!visible(seg_row, g.P, t, js, seg_t)) continue;  // warp-uniform
    const size_t row = (static_cast<size_t>(b) * g.S + js) * g.Hkv + kv;
    const float s = dot_row(qr, k + row * g.D, g.D) * g.scale;
    const float m_new = fmaxf(m, s);
    const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
    const float p = expf(s - m_new);
    l = l * corr + p;
    const float* vr = v + row * g.D;
#pragma unroll
    for (int x = 0; x < kMaxPerLane; ++x) {
      const int d = lane + 32 * x;
      if (d < g.D) acc[x] = acc[x] * corr + p * vr[d];
    }
    m = m_new;
  }
  const float inv = 1.0f / l;  // l >= 1: a real query always sees itself
#pragma unroll
  for (int x = 0; x < kMaxPerLane; ++x) {
    const int d = lane + 32 * x;
    if (d < g.D) o[d] = acc[x] * inv;
  }
  if (lane == 0) *l_out = m + logf(l);
}

// Pass 1: per query, delta (kept for pass 2) and, when wanted, dQ.
__global__ void attention_backward_dq_kernel(Geometry g, const float* q, const float* k, const float* v,
                                             const int32_t* seg, const float* out, const float* lse,
                                             const float* dout, float* delta, float* dq) {
  const long long w = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (w >= static_cast<long long>(g.B) * g.Hq * g.T) return;
  const int lane = threadIdx.x & 31;
  const int t = static_cast<int>(w % g.T), h = static_cast<int>((w / g.T) % g.Hq), b = static_cast<int>(w / g.T / g.Hq);
  const int kv = h / g.rep;
  const int32_t* seg_row = seg + static_cast<size_t>(b) * g.T;
  const int32_t seg_t = seg_row[t];
  const size_t qoff = ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D;
  const size_t stat = (static_cast<size_t>(b) * g.Hq + h) * g.T + t;
  if (seg_t < 0) {  // padding: no gradient
    if (lane == 0) delta[stat] = 0.0f;
    return;
  }
  float dor[kMaxPerLane];
  load_row(dout + qoff, g.D, dor);
  const float dl = dot_row(dor, out + qoff, g.D);
  if (lane == 0) delta[stat] = dl;
  if (!dq) return;
  float qr[kMaxPerLane], acc[kMaxPerLane];
  load_row(q + qoff, g.D, qr);
#pragma unroll
  for (int x = 0; x < kMaxPerLane; ++x) acc[x] = 0.0f;
  const float l = lse[stat];
  const int js_end = g.P + t + 1;
  for (int js = 0; js < js_end; ++js) {
    if (!visible(seg_row, g.P, t, js, seg_t)) continue;
    const size_t row = (static_cast<size_t>(b) * g.S + js) * g.Hkv + kv;
    const float p = expf(dot_row(qr, k + row * g.D, g.D) * g.scale - l);
    const float ds = p * (dot_row(dor, v + row * g.D, g.D) - dl);
    const float* kr = k + row * g.D;
#pragma unroll
    for (int x = 0; x < kMaxPerLane; ++x) {
      const int d = lane + 32 * x;
      if (d < g.D) acc[x] += ds * kr[d];
    }
  }
  float* dqr = dq + qoff;
#pragma unroll
  for (int x = 0; x < kMaxPerLane; ++x) {
    const int d = lane + 32 * x;
    if (d < g.D) dqr[d] += g.scale * acc[x];
  }
}

// Pass 2: per key (b, js, kv head), over the query heads of its group and
// the queries that see it.
__global__ void attention_backward_dkv_kernel(Geometry g, const float* q, const float* k, const float* v,
                                              const int32_t* seg, const float* lse, const float* dout,
                                              const float* delta, float* dk, float* dv) {
  const long long w = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (w >= static_cast<long long>(g.B) * g.S * g.Hkv) return;
  const int lane = threadIdx.x & 31;
  const int kv = static_cast<int>(w % g.Hkv), js = static_cast<int>((w / g.Hkv) % g.S);
  const int b = static_cast<int>(w / g.Hkv / g.S);
  const int32_t* seg_row = seg + static_cast<size_t>(b) * g.T;
  const bool prefix = js < g.P;
  const int j = js - g.P;
  const int32_t seg_j = prefix ? 0 : seg_row[j];
  if (!prefix && seg_j < 0) return;  // a padding key: no query sees it
  const size_t row = ((static_cast<size_t>(b) * g.S + js) * g.Hkv + kv) * g.D;
  float kr[kMaxPerLane], vr[kMaxPerLane], dk_acc[kMaxPerLane], dv_acc[kMaxPerLane];
  load_row(k + row, g.D, kr);
  load_row(v + row, g.D, vr);
#pragma unroll
  for (int x = 0; x < kMaxPerLane; ++x) dk_acc[x] = dv_acc[x] = 0.0f;
  for (int h = kv * g.rep; h < (kv + 1) * g.rep; ++h) {
    for (int t = prefix ? 0 : j; t < g.T; ++t) {
      const int32_t seg_t = seg_row[t];
      if (seg_t < 0 || (!prefix && seg_t != seg_j)) continue;  // warp-uniform
      const size_t qoff = ((static_cast<size_t>(b) * g.T + t) * g.Hq + h) * g.D;
      const size_t stat = (static_cast<size_t>(b) * g.Hq + h) * g.T + t;
      const float p = expf(dot_row(kr, q + qoff, g.D) * g.scale - lse[stat]);
      const float* dor = dout + qoff;
      if (dv) {
#pragma unroll
        for (int x = 0; x < kMaxPerLane; ++x) {
          const int d = lane + 32 * x;
          if (d < g.D) dv_acc[x] += p * dor[d];
        }
      }
      if (dk) {
        const float ds = p * (dot_row(vr, dor, g.D) - delta[stat]);
        const float* qr = q + qoff;
#pragma unroll
        for (int x = 0; x < kMaxPerLane; ++x) {
          const int d = lane + 32 * x;
          if (d < g.D) dk_acc[x] += ds * qr[d];
        }
      }
    }
  }
#pragma unroll
  for (int x = 0; x < kMaxPerLane; ++x) {
    const int d = lane + 32 * x;
    if (d >= g.D) continue;
    if (dk) dk[row + d] += g.scale * dk_acc[x];
    if (dv) dv[row + d] += dv_acc[x];
  }
}

unsigned warp_blocks(long long warps) {
  const long long blocks = (warps + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffffLL) throw Error("attention: problem too large for one launch");
  return static_cast<unsigned>(blocks);
}

Geometry geometry(const AttnShape& s, float scale) {
  return Geometry{s.B, s.T, s.P, s.Hq, s.Hkv, s.D, s.P + s.T, s.Hq / s.Hkv, scale};
}

}  // namespace

// Called by attention.cu after its argument checks (D <= 256).
void CudaBackend::attention_forward_reference(const AttnShape& s, const float* q, const float* k, const float* v,
                                              const int32_t* seg, float scale, float* out, float* lse) {
  const Geometry g = geometry(s, scale);
  const long long warps = static_cast<long long>(g.B) * g.Hq * g.T;
  PS_LAUNCH(attention_forward_kernel, warp_blocks(warps), 32 * kWarps, 0, 0)(g, q, k, v, seg, out, lse);
  cuda::check_launch("attention_forward (reference)");
}

void CudaBackend::attention_backward_reference(const AttnShape& s, const float* q, const float* k, const float* v,
                                               const int32_t* seg, float scale, const float* out, const float* lse,
                                               const float* dout, float* dq, float* dk, float* dv) {
  const Geometry g = geometry(s, scale);
  const long long q_warps = static_cast<long long>(g.B) * g.Hq * g.T;
  float* delta = static_cast<float*>(scratch(Scratch::Attention, static_cast<size_t>(q_warps) * sizeof(float)));
  PS_LAUNCH(attention_backward_dq_kernel, warp_blocks(q_warps), 32 * kWarps, 0, 0)
      (g, q, k, v, seg, out, lse, dout, delta, dq);
  cuda::check_launch("attention_backward (reference, dq)");
  if (!dk && !dv) return;
  const long long k_warps = static_cast<long long>(g.B) * g.S * g.Hkv;
  PS_LAUNCH(attention_backward_dkv_kernel, warp_blocks(k_warps), 32 * kWarps, 0, 0)
      (g, q, k, v, seg, lse, dout, delta, dk, dv);
  cuda::check_launch("attention_backward (reference, dk, dv)");
}

}  // namespace ps
