// The per-block work of causal grouped-query attention (flash-attention
// style): one work unit is (batch row b, query head h, a block of up to
// kAttnBq queries); it walks the key blocks it can see (kAttnBk keys each).
//  forward:  scores -> running max / running sum (online softmax) -> out, lse
//  backward: recompute P = exp(scores - lse) from q, k and the saved lse,
//            dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO out)),
//            dQ += scale dS K, dK += scale dS^T Q.
// Nothing of size T x S is ever stored.
//
// attention.cpp does the bookkeeping: it repacks K and V per kv head into
// key blocks (transposed blocks for the q.k and dO.v products, plain rows for
// P.V and dS.K) so every product reads contiguous memory (the [S, Hkv*D]
// layout puts rows 4 KB apart at 8 kv heads of 128, which thrashes L1), and
// it schedules units and combines per-thread dK/dV.
//
// This header is compiled twice: into attention.cpp (portable) and into
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

constexpr int kAttnBq = 32;  // queries per work unit
constexpr int kAttnBk = 64;  // keys per block
// Segment ids of keys as the kernels see them (real keys keep their id >= 0,
// padding keys are -1): prefix keys match every real query, keys past S none.
constexpr int32_t kAttnKeyPrefix = -3;
constexpr int32_t kAttnKeyNone = -2;

// One attention call, as the work units see it. "Packed" arrays are per
// (b, kv head) and hold n_blocks * kAttnBk keys, zero past S.
struct AttnProblem {
  AttnShape s;
  float scale = 1.0f;
  int n_blocks = 0;            // ceil(S / kAttnBk)
  const float* q = nullptr;    // [B,T,Hq,D]
  const int32_t* q_seg = nullptr;  // [B,T], as given (< 0: padding)
  const int32_t* k_seg = nullptr;  // [B, n_blocks*Bk], see kAttnKey*
  const float* kt = nullptr;   // K blocks transposed: [B,Hkv,n_blocks,D,Bk]
  const float* vt = nullptr;   // V blocks transposed (backward)
  const float* kr = nullptr;   // K rows: [B,Hkv,n_blocks*Bk,D] (backward)
  const float* vr = nullptr;   // V rows (forward)
  // forward
  float* out = nullptr;  // [B,T,Hq,D]
  float* lse = nullptr;  // [B,Hq,T]
  // backward
  const float* o = nullptr;       // forward output
  const float* lse_in = nullptr;  // forward lse
  const float* dout = nullptr;
  float* dq = nullptr;  // nullptr: not wanted
};

// Queries [t0, t1) of head h in row b. key_lo: the first real key (0-based,
// without P) any of its queries can see; -1 when all of them are padding.
struct AttnUnit {
  int b = 0, h = 0, t0 = 0, t1 = 0, key_lo = -1;
};

// Scratch floats one thread needs for any unit of head dim D.
static inline size_t attn_scratch_floats(int D) {
  return 3 * static_cast<size_t>(kAttnBq) * D + 4 * static_cast<size_t>(kAttnBq) * kAttnBk +
         4 * kAttnBq;
}

// Entry points, one per instruction set (the AVX2 one exists only when
// PS_HAVE_AVX2_KERNELS is defined). dk/dv: packed [B,Hkv,n_blocks*Bk,D]
// buffers this thread accumulates into (either may be nullptr).
void attention_forward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* dk,
                                      float* dv, float* scratch);
void attention_forward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                                  float* scratch);

static inline size_t attn_head_offset(const AttnProblem& a, int b, int g) {
  return (static_cast<size_t>(b) * a.s.Hkv + g) * a.n_blocks * kAttnBk * a.s.D;
}

static inline int attn_round_up(int x, int m) { return (x + m - 1) / m * m; }

// Calls fn(kb) for each key block unit u must visit: the prefix blocks and
// the blocks from its first visible real key to its last query.
template <typename Fn>
static inline void attn_for_each_key_block(const AttnProblem& a, const AttnUnit& u, Fn fn) {
  const int P = a.s.P;
  const int prefix_end = (P + kAttnBk - 1) / kAttnBk;
  const int real_begin = (P + u.key_lo) / kAttnBk, real_end = (P + u.t1 - 1) / kAttnBk + 1;
  for (int kb = 0; kb < real_end; ++kb)
    if (kb < prefix_end || kb >= real_begin) fn(kb);
}

// Scores of key block kb: sc[i, jj] = scale * q_i . k_js (js = kb*Bk + jj)
// where query t = t0 + i sees key js, -inf elsewhere; jj < wp, the block's
// width rounded up to the register tile (the padded keys are masked).
static inline void attn_block_scores(const AttnProblem& a, const AttnUnit& u, const float* Q,
                                     const float* KT_head, int rows, int kb, float* sc, int wp) {
  const int D = a.s.D, P = a.s.P;
  block_gemm<false>(rows, wp, D, Q, D, KT_head + static_cast<size_t>(kb) * D * kAttnBk, kAttnBk,
                    sc, kAttnBk);
  const int32_t* k_seg = a.k_seg + static_cast<size_t>(u.b) * a.n_blocks * kAttnBk + kb * kAttnBk;
  const int32_t* q_seg = a.q_seg + static_cast<size_t>(u.b) * a.s.T;
  const int j0 = kb * kAttnBk - P;  // real-key index of column 0 (negative in the prefix)
  const float scale = a.scale;
  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const int32_t seg_t = q_seg[t];
    float* row = sc + static_cast<size_t>(i) * kAttnBk;
    if (seg_t < 0) {  // padding query: sees nothing
      for (int jj = 0; jj < wp; ++jj) row[jj] = -INFINITY;
      continue;
    }
    // Visible: a prefix key, or a real key j <= t of the same segment.
    for (int jj = 0; jj < wp; ++jj) {
      const int32_t ks = k_seg[jj];
      const int32_t vis = ((ks == seg_t) | (ks == kAttnKeyPrefix)) & (j0 + jj <= t);
      row[jj] = vm_select(vis, row[jj] * scale, -INFINITY);
    }
  }
}

static void attn_forward_unit(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + s.T, rows = u.t1 - u.t0, g = u.h / (s.Hq / s.Hkv);
  const size_t q_stride = static_cast<size_t>(s.Hq) * D;
  float* Q = scratch;                                      // [Bq, D]
  float* O = Q + kAttnBq * D;                              // [Bq, D]
  float* sc = O + kAttnBq * D;                             // [Bq, Bk]
  float* m = sc + static_cast<size_t>(kAttnBq) * kAttnBk;  // running max
  float* l = m + kAttnBq;                                  // running sum
  const int32_t* q_seg = a.q_seg + static_cast<size_t>(u.b) * s.T;

  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const float* qi = a.q + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    const bool real = q_seg[t] >= 0;
    for (int d = 0; d < D; ++d) Q[i * D + d] = real ? qi[d] : 0.0f;
    for (int d = 0; d < D; ++d) O[i * D + d] = 0.0f;
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }

  if (u.key_lo >= 0) {
    const size_t head = attn_head_offset(a, u.b, g);
    const float* KT = a.kt + head;
    const float* V = a.vr + head;
    attn_for_each_key_block(a, u, [&](int kb) {
      const int js0 = kb * kAttnBk;
      const int w = S - js0 < kAttnBk ? S - js0 : kAttnBk, wp = attn_round_up(w, kBlockNR);
      attn_block_scores(a, u, Q, KT, rows, kb, sc, wp);
      for (int i = 0; i < rows; ++i) {
        float* row = sc + static_cast<size_t>(i) * kAttnBk;
        const float bm = vm_max(row, wp);
        if (bm == -INFINITY) {  // every score masked or NaN (vm_max skips NaNs)
          // A NaN score (NaN or inf in q or k) makes the row's softmax NaN, as
          // in PyTorch: l = NaN carries it to out and lse. The sum is -inf
          // when all are masked, NaN when one is NaN; only this rare branch pays.
          const float masked_sum = vm_sum(row, w);
          if (masked_sum != masked_sum) l[i] = masked_sum;
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
      block_gemm<true>(rows, D, w, sc, kAttnBk, V + static_cast<size_t>(js0) * D, D, O, D);
    });
  }

  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    float* oi = a.out + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    float* lse = a.lse + (static_cast<size_t>(u.b) * s.Hq + u.h) * s.T + t;
    if (!(l[i] == 0.0f)) {  // l > 0, or NaN (a NaN score): out and lse NaN
      const float inv = 1.0f / l[i];
      for (int d = 0; d < D; ++d) oi[d] = O[i * D + d] * inv;
      *lse = m[i] + logf(l[i]);
    } else {  // no visible key (padding query): output 0, lse 0 (a finite placeholder)
      for (int d = 0; d < D; ++d) oi[d] = 0.0f;
      *lse = 0.0f;
    }
  }
}

static void attn_backward_unit(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                               float* scratch) {
  if (u.key_lo < 0) return;  // only padding queries: no gradient anywhere
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + s.T, rows = u.t1 - u.t0, g = u.h / (s.Hq / s.Hkv);
  const size_t q_stride = static_cast<size_t>(s.Hq) * D;
  float* Q = scratch;                                       // [Bq, D]
  float* dO = Q + kAttnBq * D;                              // [Bq, D]
  float* dQ = dO + kAttnBq * D;                             // [Bq, D]
  float* pm = dQ + kAttnBq * D;                             // P, [Bq, Bk]
  float* ds = pm + static_cast<size_t>(kAttnBq) * kAttnBk;  // dP then dS, [Bq, Bk]
  float* tr = ds + static_cast<size_t>(kAttnBq) * kAttnBk;  // P^T or scale dS^T, [Bk, Bq]
  float* lse = tr + 2 * static_cast<size_t>(kAttnBq) * kAttnBk;
  float* delta = lse + kAttnBq;  // rowsum(dO * out)
  const int32_t* q_seg = a.q_seg + static_cast<size_t>(u.b) * s.T;

  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const size_t off = (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    const bool real = q_seg[t] >= 0;
    for (int d = 0; d < D; ++d) Q[i * D + d] = real ? a.q[off + d] : 0.0f;
    for (int d = 0; d < D; ++d) dO[i * D + d] = real ? a.dout[off + d] : 0.0f;
    for (int d = 0; d < D; ++d) dQ[i * D + d] = 0.0f;
    lse[i] = real ? a.lse_in[(static_cast<size_t>(u.b) * s.Hq + u.h) * s.T + t] : 0.0f;
    delta[i] = real ? vm_dot(dO + i * D, a.o + off, D) : 0.0f;
  }

  const size_t head = attn_head_offset(a, u.b, g);
  const float* KT = a.kt + head;
  const float* VT = a.vt + head;
  const float* K = a.kr + head;
  const bool need_ds = a.dq != nullptr || dk != nullptr;
  const float scale = a.scale;

  attn_for_each_key_block(a, u, [&](int kb) {
    const int js0 = kb * kAttnBk;
    const int w = S - js0 < kAttnBk ? S - js0 : kAttnBk, wp = attn_round_up(w, kBlockNR);
    const size_t row0 = head + static_cast<size_t>(js0) * D;  // first key row in packed buffers
    attn_block_scores(a, u, Q, KT, rows, kb, pm, wp);
    for (int i = 0; i < rows; ++i) {  // masked scores are -inf and give exactly 0
      float* pi = pm + static_cast<size_t>(i) * kAttnBk;
      if (lse[i] != lse[i]) {  // a NaN row (forward): NaN where visible, masked keys still 0
        for (int jj = 0; jj < wp; ++jj) pi[jj] = pi[jj] == -INFINITY ? 0.0f : lse[i];
        continue;
      }
      vm_exp_shifted(pi, lse[i], pi, wp);
    }
    if (dv) {
      for (int jj = 0; jj < w; ++jj)
        for (int i = 0; i < rows; ++i) tr[jj * kAttnBq + i] = pm[static_cast<size_t>(i) * kAttnBk + jj];
      block_gemm<true>(w, D, rows, tr, kAttnBq, dO, D, dv + row0, D);
    }
    if (!need_ds) return;
    block_gemm<false>(rows, wp, D, dO, D, VT + static_cast<size_t>(kb) * D * kAttnBk, kAttnBk, ds,
                      kAttnBk);
    for (int i = 0; i < rows; ++i) {
      float* dsi = ds + static_cast<size_t>(i) * kAttnBk;
      const float* pi = pm + static_cast<size_t>(i) * kAttnBk;
      const float di = delta[i];
      for (int jj = 0; jj < w; ++jj) dsi[jj] = pi[jj] * (dsi[jj] - di);
    }
    if (a.dq) block_gemm<true>(rows, D, w, ds, kAttnBk, K + static_cast<size_t>(js0) * D, D, dQ, D);
    if (dk) {
      for (int jj = 0; jj < w; ++jj)
        for (int i = 0; i < rows; ++i)
          tr[jj * kAttnBq + i] = scale * ds[static_cast<size_t>(i) * kAttnBk + jj];
      block_gemm<true>(w, D, rows, tr, kAttnBq, Q, D, dk + row0, D);
    }
  });

  if (a.dq) {
    for (int i = 0; i < rows; ++i) {
      const int t = u.t0 + i;
      if (q_seg[t] < 0) continue;
      float* dqi = a.dq + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
      for (int d = 0; d < D; ++d) dqi[d] += scale * dQ[i * D + d];
    }
  }
}

}  // namespace ps
