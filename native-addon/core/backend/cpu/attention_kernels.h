// The per-block work of causal grouped-query attention (flash-attention
// style): one work unit is (batch row b, query head h, a block of up to
// kAttnBq queries); it walks the key blocks it can see (kAttnBk keys each).
//  forward:  scores -> running max / running sum (online softmax) -> out, lse
//  backward: recompute P = exp(scores - lse) from q, k and the saved lse,
//            dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO out)),
//            dQ += scale dS K, dK += scale dS^T Q.
// Nothing of size T x S is ever stored.
//
// The softmax scale is folded into the unit's copy of Q (Qs = scale Q), so
// scores come out of the product already scaled and dK += dS^T Qs needs no
// extra pass. Key blocks that every query of the unit fully sees (one
// segment, all keys at or before the unit's first query: the interior of a
// long causal sequence) skip the per-element mask; only diagonal, segment
// boundary, padding and last blocks pay for it. P^T and dS^T are read in
// place by the transposed-A block product (block_gemm.h).
//
// A single query (T = 1: generation against a KV cache) takes a direct path
// that reads K and V in the caller's layout, so the cache is not repacked on
// every generated token (attn_forward_single).
//
// attention.cpp does the bookkeeping: it repacks K and V per kv head into
// key blocks (transposed blocks for the q.k and dO.v products, plain rows for
// P.V and dS.K) so every product reads contiguous memory (the [S, Hkv*D]
// layout puts rows 4 KB apart at 8 kv heads of 128, which thrashes L1), and
// it schedules units and combines per-thread dK/dV.
//
// This header is compiled three times: into attention.cpp (portable),
// avx2/attention_avx2.cpp (AVX2/FMA) and avx2/attention_avx512.cpp (AVX-512F
// where the compiler takes -mavx512f). Everything in it is `static` and calls
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

constexpr int kAttnBq = 64;  // queries per work unit
constexpr int kAttnBk = 64;  // keys per block
// Segment ids of keys as the kernels see them (real keys keep their id >= 0,
// padding keys are -1): prefix keys match every real query, keys past S none.
constexpr int32_t kAttnKeyPrefix = -3;
constexpr int32_t kAttnKeyNone = -2;
// A key block whose keys are not all of one segment (plus prefix keys).
constexpr int32_t kAttnBlockMixed = -4;

// One attention call, as the work units see it. "Packed" arrays are per
// (b, kv head) and hold n_blocks * kAttnBk keys, zero past S.
struct AttnProblem {
  AttnShape s;
  float scale = 1.0f;
  int n_blocks = 0;            // ceil(S / kAttnBk)
  const float* q = nullptr;    // [B,T,Hq,D]
  const int32_t* q_seg = nullptr;  // [B,T], as given (< 0: padding)
  const int32_t* k_seg = nullptr;  // [B, n_blocks*Bk], see kAttnKey*
  // [B, n_blocks]: the one segment id of a block's real keys when all of them
  // share it and the rest are prefix keys (kAttnKeyPrefix when all are
  // prefix keys), else kAttnBlockMixed (padding keys or keys past S count
  // as mixed).
  const int32_t* blk_seg = nullptr;
  const float* kt = nullptr;   // K blocks transposed: [B,Hkv,n_blocks,D,Bk]
  const float* vt = nullptr;   // V blocks transposed (backward)
  const float* kr = nullptr;   // K rows: [B,Hkv,n_blocks*Bk,D] (backward)
  const float* vr = nullptr;   // V rows (forward)
  const float* k = nullptr;    // K, V as given [B,S,Hkv,D] (single-query forward)
  const float* v = nullptr;
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
// seg: the segment id all its queries share, -1 when they do not (or some
// are padding).
struct AttnUnit {
  int b = 0, h = 0, t0 = 0, t1 = 0, key_lo = -1;
  int32_t seg = -1;
};

// Scratch floats one thread needs for any unit of head dim D.
static inline size_t attn_scratch_floats(int D) {
  return 3 * static_cast<size_t>(kAttnBq) * D + 2 * static_cast<size_t>(kAttnBq) * kAttnBk +
         4 * kAttnBq;
}

// Entry points, one per instruction set (the AVX2 and AVX-512 ones exist
// only when PS_HAVE_AVX2_KERNELS is defined). dk/dv: packed
// [B,Hkv,n_blocks*Bk,D] buffers this thread accumulates into (either may be
// nullptr). The single-query forward computes query row b, heads [h0, h1)
// (of one kv head) of a T = 1 problem with (h1 - h0) (S + 2 D + 1) floats of scratch.
void attention_forward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_portable(const AttnProblem& a, const AttnUnit& u, float* dk,
                                      float* dv, float* scratch);
void attention_forward_single_portable(const AttnProblem& a, int b, int h0, int h1, float* scratch);
void attention_forward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                                  float* scratch);
void attention_forward_single_avx2(const AttnProblem& a, int b, int h0, int h1, float* scratch);
void attention_forward_unit_avx512(const AttnProblem& a, const AttnUnit& u, float* scratch);
void attention_backward_unit_avx512(const AttnProblem& a, const AttnUnit& u, float* dk,
                                    float* dv, float* scratch);
void attention_forward_single_avx512(const AttnProblem& a, int b, int h0, int h1, float* scratch);

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

// exp(x) for lanes of x <= 0 (softmax arguments: score - max): within about
// 2e-7 relative of the true value; x below -87 (and -inf, the masked scores)
// gives exactly 0, NaN gives NaN. x = n ln2 + r, |r| <= ln2/2, exp(r) by its
// Taylor series to r^6 (the remainder is below 1.2e-7 relative), times 2^n.
// About half the instructions of the portable vm_exp, whose clamps and bit
// tricks serve any x at any ISA; at head dim 64 the exponentials cost about
// as much as the block products. 16 lanes (AVX-512F: 2^n by scalef) or 8
// (AVX2: 2^n built in the exponent bits, n >= -126 after the clamp).
#if defined(__AVX512F__)
static inline __m512 attn_exp_nonpositive(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.0f);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);  // x >= -87 or NaN
  x = _mm512_max_ps(lo, x);  // a NaN x stays NaN (max returns its second operand)
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln2 split in two so n * ln2_hi is exact.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}
#elif defined(__AVX2__) && defined(__FMA__)
static inline __m256 attn_exp_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.0f);
  const __m256 keep = _mm256_cmp_ps(x, lo, _CMP_NLT_UQ);  // x >= -87 or NaN
  x = _mm256_max_ps(lo, x);  // a NaN x stays NaN (max returns its second operand)
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // 2^n; a NaN lane gets junk here, but p is NaN there and stays NaN.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}
#endif

// row[j] = exp(row[j] - shift) for j < n (n a multiple of kBlockNR; shift is
// the row's max or its lse, so the arguments are <= 0 up to rounding).
static inline void attn_exp_shifted(float* row, float shift, int n) {
#if defined(__AVX512F__)
  const __m512 sh = _mm512_set1_ps(shift);
  for (int j = 0; j < n; j += 16)
    _mm512_storeu_ps(row + j, attn_exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(row + j), sh)));
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 sh = _mm256_set1_ps(shift);
  for (int j = 0; j < n; j += 8)
    _mm256_storeu_ps(row + j, attn_exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(row + j), sh)));
#else
  vm_exp_shifted(row, shift, row, n);
#endif
}

// max of row[0, n) (n a multiple of kBlockNR), NaNs skipped like vm_max.
static inline float attn_row_max(const float* row, int n) {
#if defined(__AVX512F__)
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int j = 0; j < n; j += 16) m = _mm512_max_ps(_mm512_loadu_ps(row + j), m);  // NaN: keeps m
  return _mm512_reduce_max_ps(m);
#else
  return vm_max(row, n);
#endif
}

// attn_exp_shifted, returning the sum of row[0, w) (the columns past w are
// masked scores and come out 0).
static inline float attn_exp_shifted_sum(float* row, float shift, int n, int w) {
#if defined(__AVX512F__)
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int j = 0; j < n; j += 16) {
    const __m512 e = attn_exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(row + j), sh));
    _mm512_storeu_ps(row + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  (void)w;
  return _mm512_reduce_add_ps(sum);
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  for (int j = 0; j < n; j += 8) {
    const __m256 e = attn_exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(row + j), sh));
    _mm256_storeu_ps(row + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  (void)w;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
#else
  vm_exp_shifted(row, shift, row, n);
  return vm_sum(row, w);
#endif
}

// Loads the unit's queries scaled by the softmax scale (padding queries as 0).
static inline void attn_load_scaled_q(const AttnProblem& a, const AttnUnit& u, float* Q) {
  const int D = a.s.D;
  const size_t q_stride = static_cast<size_t>(a.s.Hq) * D;
  const int32_t* q_seg = a.q_seg + static_cast<size_t>(u.b) * a.s.T;
  const float scale = a.scale;
  for (int i = 0; i < u.t1 - u.t0; ++i) {
    const int t = u.t0 + i;
    const float* qi = a.q + (static_cast<size_t>(u.b) * a.s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    // A padding query's row is 0, not 0 * q: an inf or NaN q there would make
    // it NaN, and the backward's dK += dS^T Qs would carry that to every key.
    if (q_seg[t] >= 0)
      for (int d = 0; d < D; ++d) Q[i * D + d] = scale * qi[d];
    else
      for (int d = 0; d < D; ++d) Q[i * D + d] = 0.0f;
  }
}

// Scores of key block kb: sc[i, jj] = Qs_i . k_js (js = kb*Bk + jj) where
// query t = t0 + i sees key js, -inf elsewhere; jj < wp, the block's width
// rounded up to the register tile (the padded keys are masked).
static inline void attn_block_scores(const AttnProblem& a, const AttnUnit& u, const float* Qs,
                                     const float* KT_head, int rows, int kb, float* sc, int wp) {
  const int D = a.s.D, P = a.s.P;
  block_gemm<false>(rows, wp, D, block_a(Qs, D), KT_head + static_cast<size_t>(kb) * D * kAttnBk,
                    kAttnBk, sc, kAttnBk);
  // Every query of the unit sees every key of the block: nothing to mask.
  const int32_t bs = a.blk_seg[static_cast<size_t>(u.b) * a.n_blocks + kb];
  if (u.seg >= 0 && (bs == u.seg || bs == kAttnKeyPrefix) && kb * kAttnBk + kAttnBk - 1 - P <= u.t0)
    return;
  const int j0 = kb * kAttnBk - P;  // real-key index of column 0 (negative in the prefix)
  if (u.seg >= 0 && (bs == u.seg || bs == kAttnKeyPrefix)) {
    // One segment on both sides (a diagonal block): only causality masks,
    // query t sees columns jj <= t - j0.
    for (int i = 0; i < rows; ++i) {
      float* row = sc + static_cast<size_t>(i) * kAttnBk;
      for (int jj = u.t0 + i - j0 + 1 < 0 ? 0 : u.t0 + i - j0 + 1; jj < wp; ++jj) row[jj] = -INFINITY;
    }
    return;
  }
  const int32_t* k_seg = a.k_seg + static_cast<size_t>(u.b) * a.n_blocks * kAttnBk + kb * kAttnBk;
  const int32_t* q_seg = a.q_seg + static_cast<size_t>(u.b) * a.s.T;
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
      row[jj] = vm_select(vis, row[jj], -INFINITY);
    }
  }
}

static void attn_forward_unit(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + s.T, rows = u.t1 - u.t0, g = u.h / (s.Hq / s.Hkv);
  const size_t q_stride = static_cast<size_t>(s.Hq) * D;
  float* Q = scratch;                                      // [Bq, D], scaled
  float* O = Q + kAttnBq * D;                              // [Bq, D]
  float* sc = O + kAttnBq * D;                             // [Bq, Bk]
  float* m = sc + static_cast<size_t>(kAttnBq) * kAttnBk;  // running max
  float* l = m + kAttnBq;                                  // running sum

  attn_load_scaled_q(a, u, Q);
  for (int i = 0; i < rows; ++i) {
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
        const float bm = attn_row_max(row, wp);
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
        const float row_sum = attn_exp_shifted_sum(row, m_new, wp, w);
        const float corr = m[i] == -INFINITY ? 0.0f : expf(m[i] - m_new);
        l[i] = l[i] * corr + row_sum;
        if (corr != 1.0f)
          for (int d = 0; d < D; ++d) O[i * D + d] *= corr;
        m[i] = m_new;
      }
      block_gemm<true>(rows, D, w, block_a(sc, kAttnBk), V + static_cast<size_t>(js0) * D, D, O, D);
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

// Forward of query row b, heads [h0, h1) (all of one kv head g) when T = 1:
// the query sees every prefix key and itself (its own key, the last), so no
// mask; K and V are read in the caller's [B,S,Hkv,D] layout, each key row
// once for all the unit's heads. Two passes over the keys: scores, then out.
// Each head's numbers do not depend on which other heads share its unit.
static void attn_forward_single(const AttnProblem& a, int b, int h0, int h1, float* scratch) {
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + 1, g = h0 / (s.Hq / s.Hkv), nh = h1 - h0;
  const size_t kv_stride = static_cast<size_t>(s.Hkv) * D;
  float* sc = scratch;                            // [nh, S]
  float* Qs = sc + static_cast<size_t>(nh) * S;   // [nh, D], scaled
  float* O = Qs + static_cast<size_t>(nh) * D;    // [nh, D]
  float* inv = O + static_cast<size_t>(nh) * D;   // [nh], 1 / softmax sum
  const size_t q_off = (static_cast<size_t>(b) * s.Hq + h0) * D;  // T = 1
  float* out = a.out + q_off;
  float* lse = a.lse + static_cast<size_t>(b) * s.Hq + h0;
  if (a.q_seg[b] < 0) {  // padding query: output 0, lse 0
    for (int i = 0; i < nh * D; ++i) out[i] = 0.0f;
    for (int hh = 0; hh < nh; ++hh) lse[hh] = 0.0f;
    return;
  }
  for (int i = 0; i < nh * D; ++i) Qs[i] = a.scale * a.q[q_off + i];
  const float* K = a.k + static_cast<size_t>(b) * S * kv_stride + static_cast<size_t>(g) * D;
  const float* V = a.v + static_cast<size_t>(b) * S * kv_stride + static_cast<size_t>(g) * D;
  for (int js = 0; js < S; ++js)
    for (int hh = 0; hh < nh; ++hh)
      sc[static_cast<size_t>(hh) * S + js] = vm_dot(Qs + hh * D, K + js * kv_stride, D);
  for (int hh = 0; hh < nh; ++hh) {
    float* row = sc + static_cast<size_t>(hh) * S;
    const float m = vm_max(row, S);
    if (m == -INFINITY) {  // every score NaN or -inf: as the blocked path, NaN or no key (0)
      const float sum = vm_sum(row, S);
      for (int js = 0; js < S; ++js) row[js] = 0.0f;
      inv[hh] = lse[hh] = sum != sum ? sum : 0.0f;
      continue;
    }
    vm_exp_shifted(row, m, row, S);
    float l = 0.0f;  // summed per block of keys, like the blocked path
    for (int j0 = 0; j0 < S; j0 += kAttnBk) l += vm_sum(row + j0, S - j0 < kAttnBk ? S - j0 : kAttnBk);
    inv[hh] = 1.0f / l;  // l >= 1 (the max key gives exp(0)), or NaN
    lse[hh] = m + logf(l);
  }
  for (int i = 0; i < nh * D; ++i) O[i] = 0.0f;
  for (int js = 0; js < S; ++js) {
    const float* vj = V + js * kv_stride;
    for (int hh = 0; hh < nh; ++hh) {
      const float p = sc[static_cast<size_t>(hh) * S + js];
      float* o = O + hh * D;
      for (int d = 0; d < D; ++d) o[d] += p * vj[d];
    }
  }
  for (int hh = 0; hh < nh; ++hh)
    for (int d = 0; d < D; ++d) out[hh * D + d] = O[hh * D + d] * inv[hh];
}

static void attn_backward_unit(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                               float* scratch) {
  if (u.key_lo < 0) return;  // only padding queries: no gradient anywhere
  const AttnShape& s = a.s;
  const int D = s.D, S = s.P + s.T, rows = u.t1 - u.t0, g = u.h / (s.Hq / s.Hkv);
  const size_t q_stride = static_cast<size_t>(s.Hq) * D;
  float* Q = scratch;                                       // [Bq, D], scaled
  float* dO = Q + kAttnBq * D;                              // [Bq, D]
  float* dQ = dO + kAttnBq * D;                             // [Bq, D]
  float* pm = dQ + kAttnBq * D;                             // P, [Bq, Bk]
  float* ds = pm + static_cast<size_t>(kAttnBq) * kAttnBk;  // dP then dS, [Bq, Bk]
  float* lse = ds + static_cast<size_t>(kAttnBq) * kAttnBk;
  float* delta = lse + kAttnBq;  // rowsum(dO * out)
  const int32_t* q_seg = a.q_seg + static_cast<size_t>(u.b) * s.T;

  attn_load_scaled_q(a, u, Q);
  for (int i = 0; i < rows; ++i) {
    const int t = u.t0 + i;
    const size_t off = (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
    const bool real = q_seg[t] >= 0;
    const float* douti = a.dout + off;
    if (real)  // (a select inside the loop keeps it from vectorising)
      for (int d = 0; d < D; ++d) dO[i * D + d] = douti[d];
    else
      for (int d = 0; d < D; ++d) dO[i * D + d] = 0.0f;
    for (int d = 0; d < D; ++d) dQ[i * D + d] = 0.0f;
    lse[i] = real ? a.lse_in[(static_cast<size_t>(u.b) * s.Hq + u.h) * s.T + t] : 0.0f;
    delta[i] = real ? vm_dot(dO + i * D, a.o + off, D) : 0.0f;
  }

  const size_t head = attn_head_offset(a, u.b, g);
  const float* KT = a.kt + head;
  const float* VT = a.vt + head;
  const float* K = a.kr + head;
  const bool need_ds = a.dq != nullptr || dk != nullptr;

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
      attn_exp_shifted(pi, lse[i], wp);
    }
    // dV[w, D] += P^T dO
    if (dv) block_gemm<true>(w, D, rows, block_a_transposed(pm, kAttnBk), dO, D, dv + row0, D);
    if (!need_ds) return;
    block_gemm<false>(rows, wp, D, block_a(dO, D), VT + static_cast<size_t>(kb) * D * kAttnBk,
                      kAttnBk, ds, kAttnBk);
    for (int i = 0; i < rows; ++i) {
      float* dsi = ds + static_cast<size_t>(i) * kAttnBk;
      const float* pi = pm + static_cast<size_t>(i) * kAttnBk;
      const float di = delta[i];
      for (int jj = 0; jj < w; ++jj) dsi[jj] = pi[jj] * (dsi[jj] - di);
    }
    if (a.dq)
      block_gemm<true>(rows, D, w, block_a(ds, kAttnBk), K + static_cast<size_t>(js0) * D, D, dQ, D);
    // dK[w, D] += scale dS^T Q = dS^T Qs
    if (dk) block_gemm<true>(w, D, rows, block_a_transposed(ds, kAttnBk), Q, D, dk + row0, D);
  });

  if (a.dq) {
    const float scale = a.scale;
    for (int i = 0; i < rows; ++i) {
      const int t = u.t0 + i;
      if (q_seg[t] < 0) continue;
      float* dqi = a.dq + (static_cast<size_t>(u.b) * s.T + t) * q_stride + static_cast<size_t>(u.h) * D;
      for (int d = 0; d < D; ++d) dqi[d] += scale * dQ[i * D + d];
    }
  }
}

}  // namespace ps
