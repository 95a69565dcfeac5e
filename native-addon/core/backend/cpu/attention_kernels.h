// The per-block work of causal grouped-query attention (flash-attention
// style): one work unit is (batch row b, query head h, a block of up to
// kAttnBq queries); it walks the keys it can see in blocks of kAttnBk.
//  forward:  scores -> running max / running sum (online softmax) -> out, lse
//  backward: recompute P = exp(scores - lse) from q, k and the saved lse,
//            dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO out)),
//            dQ += scale dS K, dK += scale dS^T Q.
// Nothing of size T x S is ever stored.
//
// attention.cpp does the bookkeeping (shapes, segments, transposed K/V,
// scheduling, combining per-thread dK/dV); this header is the arithmetic and
// is compiled twice: into attention.cpp (portable) and into
// avx2/attention_avx2.cpp (AVX2/FMA). Everything in it is `static` and calls
// nothing inline from elsewhere (not even AttnShape::S()), so no AVX2 copy of
// a shared inline function can end up in the portable path.
#pragma once

#include <math.h>  // expf, logf: C functions, nothing inline to share across ISAs

#include <cstddef>
#include <cstdint>

#include "backend.h"
#include "block_gemm.h"
#include "vec_math.h"

namespace ps {

constexpr int kAttnBq = 32;        // queries per work unit
constexpr int kAttnBk = 64;        // keys per inner block
constexpr int kAttnSegNever = -2;  // padding of the segment table: matches no query

// One attention call, as the work units see it.
struct AttnProblem {
  AttnShape s;
  float scale = 1.0f;
  const float* q = nullptr;   // [B,T,Hq,D]
  const float* k = nullptr;   // [B,S,Hkv,D]
  const float* v = nullptr;   // [B,S,Hkv,D]
  const float* kt = nullptr;  // K transposed, [B,Hkv,D,s_pad], zero past S
  const float* vt = nullptr;  // V transposed (backward only), same layout
  int s_pad = 0;              // >= S + kAttnBk: a block may read that far
  const int32_t* seg = nullptr;  // [B,t_pad], kAttnSegNever past T
  int t_pad = 0;                 // >= T + kAttnBk
  // forward
  float* out = nullptr;  // [B,T,Hq,D]
  float* lse = nullptr;  // [B,Hq,T]
  // backward
  const float* o = nullptr;       // forward output
  const float* lse_in = nullptr;  // forward lse
  const float* dout = nullptr;
  float* dq = nullptr;  // nullptr: not wanted
};

// Queries [t0, t1) of head h in row b. Every key it must visit lies in the
// prefix [0, P) or in [P + key_lo, P + t1); key_lo < 0: all queries are padding.
struct AttnUnit {
  int b = 0, h = 0, t0 = 0, t1 = 0, key_lo = -1;
};

// Scratch floats one thread needs for any unit of head dim D.
static inline size_t attn_scratch_floats(int D) {
  return 3 * static_cast<size_t>(kAttnBq) * D + 4 * static_cast<size_t>(kAttnBq) * kAttnBk +
         4 * kAttnBq;
}

// Entry points, one per instruction set (the AVX2 one exists only when
// PS_HAVE_AVX2_KERNELS is defined). dk/dv: where this thread accumulates
// (either may be nullptr).
void attention_forward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* dk,
                                      float* dv, float* scratch);
void attention_forward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                                  float* scratch);

// Scores of one block: sc[i, jj] = scale * q_i . k_(js0+jj) for visible keys,
// -inf for the rest, for jj < wp (the block width rounded up to the register
// tile; columns past the block are masked).
template <int MR, int NR>
static inline void attn_block_scores(const AttnProblem& a, const AttnUnit& u, const float* Q,
                                     const float* KT, int rows, int js0, int js1, bool prefix,
                                     float* sc, int wp) {
  const int D = a.s.D, P = a.s.P;
  block_gemm<MR, NR, false>(rows, wp, D, Q, D, KT + js0, a.s_pad, sc, kAttnBk);
  const int32_t* segb = a.seg + static_cast<size_t>(u.b) * a.t_pad;
  const int w = js1 - js0;
  const float scale = a.scale;
  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const int32_t seg_t = segb[t];
    float* row = sc + static_cast<size_t>(i) * kAttnBk;
    if (seg_t < 0) {  // padding query: sees nothing
      for (int jj = 0; jj < wp; ++jj) row[jj] = -INFINITY;
    } else if (prefix) {
      for (int jj = 0; jj < wp; ++jj) row[jj] = vm_select(jj < w, row[jj] * scale, -INFINITY);
    } else {
      // real key j = js0 - P + jj: visible iff j <= t and same segment
      // (columns past the block have j >= t1 > t, or hit the padding of seg).
      const int j0 = js0 - P;
      const int32_t* seg_k = segb + j0;
      for (int jj = 0; jj < wp; ++jj)
        row[jj] = vm_select((j0 + jj <= t) & (seg_k[jj] == seg_t), row[jj] * scale, -INFINITY);
    }
  }
}

// Calls fn(js0, js1, prefix) for each key block unit u must visit.
template <typename Fn>
static inline void attn_for_each_key_block(const AttnProblem& a, const AttnUnit& u, Fn fn) {
  const int P = a.s.P;
  for (int js0 = 0; js0 < P; js0 += kAttnBk) fn(js0, js0 + kAttnBk < P ? js0 + kAttnBk : P, true);
  const int end = P + u.t1;
  for (int js0 = P + u.key_lo; js0 < end; js0 += kAttnBk)
    fn(js0, js0 + kAttnBk < end ? js0 + kAttnBk : end, false);
}

static inline int attn_round_up(int x, int m) { return (x + m - 1) / m * m; }

template <int MR, int NR>
static void attn_forward_unit(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + s.T, rows = u.t1 - u.t0, g = u.h / (s.Hq / s.Hkv);
  const size_t q_stride = static_cast<size_t>(s.Hq) * D, kv_stride = static_cast<size_t>(s.Hkv) * D;
  float* Q = scratch;                                     // [Bq, D]
  float* O = Q + kAttnBq * D;                             // [Bq, D]
  float* sc = O + kAttnBq * D;                            // [Bq, Bk]
  float* m = sc + static_cast<size_t>(kAttnBq) * kAttnBk;  // running max
  float* l = m + kAttnBq;                                  // running sum
  const int32_t* segb = a.seg + static_cast<size_t>(u.b) * a.t_pad;

  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const float* qi = a.q + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    const bool real = segb[t] >= 0;
    for (int d = 0; d < D; ++d) Q[i * D + d] = real ? qi[d] : 0.0f;
    for (int d = 0; d < D; ++d) O[i * D + d] = 0.0f;
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }

  if (u.key_lo >= 0) {
    const float* KT = a.kt + (static_cast<size_t>(u.b) * s.Hkv + g) * D * a.s_pad;
    const float* V = a.v + static_cast<size_t>(u.b) * S * kv_stride + static_cast<size_t>(g) * D;
    attn_for_each_key_block(a, u, [&](int js0, int js1, bool prefix) {
      const int w = js1 - js0, wp = attn_round_up(w, NR);
      attn_block_scores<MR, NR>(a, u, Q, KT, rows, js0, js1, prefix, sc, wp);
      for (int i = 0; i < rows; ++i) {
        float* row = sc + static_cast<size_t>(i) * kAttnBk;
        const float bm = vm_max(row, wp);
        if (bm == -INFINITY) {  // nothing visible in this block for this query
          for (int jj = 0; jj < w; ++jj) row[jj] = 0.0f;
          continue;
        }
        const float m_new = bm > m[i] ? bm : m[i];
        vm_exp_shifted(row, m_new, row, wp);
        const float corr = m[i] == -INFINITY ? 0.0f : expf(m[i] - m_new);
        l[i] = l[i] * corr + vm_sum(row, w);
        if (corr != 1.0f)
          for (int d = 0; d < D; ++d) O[i * D + d] *= corr;
        m[i] = m_new;
      }
      block_gemm<MR, NR, true>(rows, D, w, sc, kAttnBk, V + js0 * kv_stride,
                               static_cast<int>(kv_stride), O, D);
    });
  }

  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    float* oi = a.out + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    float* lse = a.lse + (static_cast<size_t>(u.b) * s.Hq + u.h) * s.T + t;
    if (l[i] > 0.0f) {
      const float inv = 1.0f / l[i];
      for (int d = 0; d < D; ++d) oi[d] = O[i * D + d] * inv;
      *lse = m[i] + logf(l[i]);
    } else {  // padding query: output 0, lse 0 (a finite placeholder)
      for (int d = 0; d < D; ++d) oi[d] = 0.0f;
      *lse = 0.0f;
    }
  }
}

template <int MR, int NR>
static void attn_backward_unit(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                               float* scratch) {
  if (u.key_lo < 0) return;  // only padding queries: no gradient anywhere
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + s.T, rows = u.t1 - u.t0, g = u.h / (s.Hq / s.Hkv);
  const size_t q_stride = static_cast<size_t>(s.Hq) * D, kv_stride = static_cast<size_t>(s.Hkv) * D;
  const int kv_ld = static_cast<int>(kv_stride);
  float* Q = scratch;                                   // [Bq, D]
  float* dO = Q + kAttnBq * D;                          // [Bq, D]
  float* dQ = dO + kAttnBq * D;                         // [Bq, D]
  float* pm = dQ + kAttnBq * D;                         // P, [Bq, Bk]
  float* ds = pm + static_cast<size_t>(kAttnBq) * kAttnBk;  // dP then dS, [Bq, Bk]
  float* tr = ds + static_cast<size_t>(kAttnBq) * kAttnBk;  // P^T or scale dS^T, [Bk, Bq]
  float* lse = tr + 2 * static_cast<size_t>(kAttnBq) * kAttnBk;
  float* delta = lse + kAttnBq;  // rowsum(dO * out)
  const int32_t* segb = a.seg + static_cast<size_t>(u.b) * a.t_pad;

  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const size_t off = (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    const bool real = segb[t] >= 0;
    for (int d = 0; d < D; ++d) Q[i * D + d] = real ? a.q[off + d] : 0.0f;
    for (int d = 0; d < D; ++d) dO[i * D + d] = real ? a.dout[off + d] : 0.0f;
    for (int d = 0; d < D; ++d) dQ[i * D + d] = 0.0f;
    lse[i] = real ? a.lse_in[(static_cast<size_t>(u.b) * s.Hq + u.h) * s.T + t] : 0.0f;
    delta[i] = real ? vm_dot(dO + i * D, a.o + off, D) : 0.0f;
  }

  const float* KT = a.kt + (static_cast<size_t>(u.b) * s.Hkv + g) * D * a.s_pad;
  const float* VT = a.vt + (static_cast<size_t>(u.b) * s.Hkv + g) * D * a.s_pad;
  const size_t kv_base = static_cast<size_t>(u.b) * S * kv_stride + static_cast<size_t>(g) * D;
  const float* K = a.k + kv_base;
  const bool need_ds = a.dq != nullptr || dk != nullptr;
  const float scale = a.scale;

  attn_for_each_key_block(a, u, [&](int js0, int js1, bool prefix) {
    const int w = js1 - js0, wp = attn_round_up(w, NR);
    attn_block_scores<MR, NR>(a, u, Q, KT, rows, js0, js1, prefix, pm, wp);
    for (int i = 0; i < rows; ++i)  // masked scores are -inf and give exactly 0
      vm_exp_shifted(pm + static_cast<size_t>(i) * kAttnBk, lse[i], pm + static_cast<size_t>(i) * kAttnBk, wp);
    if (dv) {
      for (int jj = 0; jj < w; ++jj)
        for (int i = 0; i < rows; ++i) tr[jj * kAttnBq + i] = pm[static_cast<size_t>(i) * kAttnBk + jj];
      block_gemm<MR, NR, true>(w, D, rows, tr, kAttnBq, dO, D, dv + kv_base + js0 * kv_stride, kv_ld);
    }
    if (!need_ds) return;
    block_gemm<MR, NR, false>(rows, wp, D, dO, D, VT + js0, a.s_pad, ds, kAttnBk);
    for (int i = 0; i < rows; ++i) {
      float* dsi = ds + static_cast<size_t>(i) * kAttnBk;
      const float* pi = pm + static_cast<size_t>(i) * kAttnBk;
      const float di = delta[i];
      for (int jj = 0; jj < w; ++jj) dsi[jj] = pi[jj] * (dsi[jj] - di);
    }
    if (a.dq) block_gemm<MR, NR, true>(rows, D, w, ds, kAttnBk, K + js0 * kv_stride, kv_ld, dQ, D);
    if (dk) {
      for (int jj = 0; jj < w; ++jj)
        for (int i = 0; i < rows; ++i)
          tr[jj * kAttnBq + i] = scale * ds[static_cast<size_t>(i) * kAttnBk + jj];
      block_gemm<MR, NR, true>(w, D, rows, tr, kAttnBq, Q, D, dk + kv_base + js0 * kv_stride, kv_ld);
    }
  });

  if (a.dq) {
    for (int i = 0; i < rows; ++i) {
      const int t = u.t0 + i;
      if (segb[t] < 0) continue;
      float* dqi = a.dq + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
      for (int d = 0; d < D; ++d) dqi[d] += scale * dQ[i * D + d];
    }
  }
}

}  // namespace ps
