// AVX2 NF4 kernels: dequantization, the aligned GEMV pass and the general
// GEMV. In dequantization and the general GEMV a 16-entry table lookup is two
// 8-lane permutes of the halves of the table, picked by bit 3 of the code;
// the aligned pass looks codes up by bytes (see its section). Compiled with
// -mavx2 -mfma (and -ffp-contract=off); entered only after the run-time CPU
// check. Like the other AVX2 files, no standard-library template is
// instantiated here (an AVX2 copy of one could be linked into portable code).
#include <immintrin.h>

#include <cstdint>

#include "../nf4_dequant_impl.h"
#include "../nf4_kernels.h"
#include "quant/nf4_tables.h"

namespace ps {
namespace nf4k {
namespace {

struct Avx2Body {
  __m256 t_lo, t_hi;
  explicit Avx2Body(const float* table)
      : t_lo(_mm256_loadu_ps(table)), t_hi(_mm256_loadu_ps(table + 8)) {}

  static inline __m256 lookup(__m256 lo, __m256 hi, __m256i idx) {
    const __m256 a = _mm256_permutevar8x32_ps(lo, idx);  // uses idx & 7
    const __m256 b = _mm256_permutevar8x32_ps(hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3 -> sign
  }

  inline void operator()(const uint8_t* bytes, float scale, float* out) const {
    const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes));
    const __m128i mask = _mm_set1_epi8(0x0F);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    const __m128i lo = _mm_and_si128(packed, mask);
    const __m128i codes = _mm_unpacklo_epi8(hi, lo);  // h0 l0 h1 l1 ... (16 codes)
    const __m256i i0 = _mm256_cvtepu8_epi32(codes);
    const __m256i i1 = _mm256_cvtepu8_epi32(_mm_srli_si128(codes, 8));
    const __m256 s = _mm256_set1_ps(scale);
    _mm256_storeu_ps(out, _mm256_mul_ps(lookup(t_lo, t_hi, i0), s));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(lookup(t_lo, t_hi, i1), s));
  }
};

}  // namespace

void dequant_run_avx2(const Nf4Weight& W, int64_t i0, int64_t len, float* out) {
  const float* table = nf4_code_table();
  const Avx2Body body(table);
  dequant_run(W, table, i0, len, out, body);
}

}  // namespace nf4k
}  // namespace ps

namespace ps {
namespace nf4k {
namespace {

inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// One row of W against up to kMaxRows inputs, codes decoded in registers and
// never stored: per block, acc += code * x (FMA), then total += acc * scale.
template <int R>
void gemv_row(const Nf4Weight& W, const float* table, const Avx2Body& body, int64_t n,
              const float* X, ptrdiff_t ldx, float alpha, bool accumulate, float* Y, ptrdiff_t ldy) {
  const int64_t K = W.cols, bs = W.blocksize;
  int64_t i = n * K;
  const int64_t end = i + K;
  int64_t b = i / bs, block_end = (b + 1) * bs;
  const bool dq = W.double_quantized();
  const int64_t nbs = dq ? W.nested_blocksize : 1;
  int64_t nested = b / nbs, nested_left = nbs - b % nbs;
  __m256 tot[R];
  float stot[R];
  for (int r = 0; r < R; ++r) tot[r] = _mm256_setzero_ps(), stot[r] = 0.0f;
  const __m128i mask = _mm_set1_epi8(0x0F);
  while (i < end) {
    const int64_t stop = end < block_end ? end : block_end;
    float s;
    if (dq) {
      const float scaled = W.absmax_map[W.absmax_codes[b]] * W.nested_absmax[nested];
      s = scaled + W.nested_offset;
    } else {
      s = W.absmax[b];
    }
    __m256 acc[R];
    float sacc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps(), sacc[r] = 0.0f;
    const int64_t base = n * K;
    if ((i & 1) && i < stop) {
      const float c = table[code_at(W.codes, i)];
      for (int r = 0; r < R; ++r) sacc[r] += c * X[r * ldx + (i - base)];
      ++i;
    }
    for (; i + 16 <= stop; i += 16) {
      const __m128i packed = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(W.codes + (i >> 1)));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
      const __m128i lo = _mm_and_si128(packed, mask);
      const __m128i codes = _mm_unpacklo_epi8(hi, lo);
      const __m256 v0 = Avx2Body::lookup(body.t_lo, body.t_hi, _mm256_cvtepu8_epi32(codes));
      const __m256 v1 =
          Avx2Body::lookup(body.t_lo, body.t_hi, _mm256_cvtepu8_epi32(_mm_srli_si128(codes, 8)));
      for (int r = 0; r < R; ++r) {
        const float* x = X + r * ldx + (i - base);
        acc[r] = _mm256_fmadd_ps(v0, _mm256_loadu_ps(x), acc[r]);
        acc[r] = _mm256_fmadd_ps(v1, _mm256_loadu_ps(x + 8), acc[r]);
      }
    }
    for (; i < stop; ++i) {
      const float c = table[code_at(W.codes, i)];
      for (int r = 0; r < R; ++r) sacc[r] += c * X[r * ldx + (i - base)];
    }
    const __m256 sv = _mm256_set1_ps(s);
    for (int r = 0; r < R; ++r) {
      tot[r] = _mm256_fmadd_ps(acc[r], sv, tot[r]);
      stot[r] += sacc[r] * s;
    }
    ++b;
    block_end += bs;
    if (--nested_left == 0) ++nested, nested_left = nbs;
  }
  for (int r = 0; r < R; ++r) {
    const float dot = hsum(tot[r]) + stot[r];
    float& y = Y[r * ldy + n];
    y = accumulate ? y + alpha * dot : alpha * dot;
  }
}

}  // namespace

void gemv_nt_avx2(const Nf4Weight& W, int64_t n0, int64_t n1, int M, const float* X, int ldx,
                  float alpha, bool accumulate, float* Y, int ldy) {
  const float* table = nf4_code_table();
  const Avx2Body body(table);
  for (int m0 = 0; m0 < M; m0 += 4) {
    const int r = M - m0 < 4 ? M - m0 : 4;
    const float* x = X + (ptrdiff_t)m0 * ldx;
    float* y = Y + (ptrdiff_t)m0 * ldy;
    for (int64_t n = n0; n < n1; ++n) {
      switch (r) {
        case 1: gemv_row<1>(W, table, body, n, x, ldx, alpha, accumulate, y, ldy); break;
        case 2: gemv_row<2>(W, table, body, n, x, ldx, alpha, accumulate, y, ldy); break;
        case 3: gemv_row<3>(W, table, body, n, x, ldx, alpha, accumulate, y, ldy); break;
        default: gemv_row<4>(W, table, body, n, x, ldx, alpha, accumulate, y, ldy); break;
      }
    }
  }
}

}  // namespace nf4k
}  // namespace ps

// ---- aligned GEMV pass (gemv_pass_avx2) ----------------------------------------
// Without AVX-512 the 16-entry table does not fit one permute. Instead the
// table is split into its four byte planes (byte k of every entry, 16 bytes,
// one vpshufb table each) and a float is rebuilt from four byte lookups by two
// rounds of unpacks: 12 in-lane shuffles per 32 weights, which recent cores
// run on two ports, where the permute lookup needed 8 cross-lane permutes, 4
// blends and 2 zero-extensions, the permutes and extensions all on one port.
// On SmolLM2-135M shapes (bench_nf4, 1 input) it runs ~1.4x faster.
namespace ps {
namespace nf4k {
namespace {

constexpr int64_t kPrefetchRows = 8;  // codes requested this many rows of W ahead

// See nf4_avx512.cpp: a hint only, never a fault, the address an integer.
inline void prefetch(const uint8_t* codes, int64_t offset) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(codes) + offset), _MM_HINT_T0);
}

// plane[k] (both 128-bit lanes) = byte k of table[0..16): the vpshufb tables.
struct BytePlanes {
  __m256i plane[4];
  BytePlanes() {
    const float* table = nf4_code_table();
    // Within each group of 4 entries, gather byte k of the 4 entries into dword k...
    const __m128i gather = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m128i g[4];
    for (int q = 0; q < 4; ++q)
      g[q] = _mm_shuffle_epi8(_mm_castps_si128(_mm_loadu_ps(table + 4 * q)), gather);
    // ... then transpose the 4x4 dwords: plane k = dword k of groups 0..3.
    const __m128i a = _mm_unpacklo_epi32(g[0], g[1]), b = _mm_unpacklo_epi32(g[2], g[3]);
    const __m128i c = _mm_unpackhi_epi32(g[0], g[1]), d = _mm_unpackhi_epi32(g[2], g[3]);
    plane[0] = _mm256_broadcastsi128_si256(_mm_unpacklo_epi64(a, b));
    plane[1] = _mm256_broadcastsi128_si256(_mm_unpackhi_epi64(a, b));
    plane[2] = _mm256_broadcastsi128_si256(_mm_unpacklo_epi64(c, d));
    plane[3] = _mm256_broadcastsi128_si256(_mm_unpackhi_epi64(c, d));
  }
};

// The 32 weights of 16 code bytes, in the order of order_inputs_avx2: out[q]
// = elements 8q, 8q+2, 8q+4, 8q+6 (low lane), 8q+1, 8q+3, 8q+5, 8q+7 (high).
// The bytes go to both lanes; the low lane keeps the high nibbles (even
// elements), the high lane the low ones (odd elements).
inline void decode32(const uint8_t* p, const BytePlanes& t, __m256i shift, __m256i nibble,
                     __m256 out[4]) {
  const __m128i run = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i bytes = _mm256_broadcastsi128_si256(run);
  const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(bytes, shift), nibble);
  const __m256i b0 = _mm256_shuffle_epi8(t.plane[0], idx);
  const __m256i b1 = _mm256_shuffle_epi8(t.plane[1], idx);
  const __m256i b2 = _mm256_shuffle_epi8(t.plane[2], idx);
  const __m256i b3 = _mm256_shuffle_epi8(t.plane[3], idx);
  const __m256i lo01 = _mm256_unpacklo_epi8(b0, b1), hi01 = _mm256_unpackhi_epi8(b0, b1);
  const __m256i lo23 = _mm256_unpacklo_epi8(b2, b3), hi23 = _mm256_unpackhi_epi8(b2, b3);
  out[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo01, lo23));
  out[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo01, lo23));
  out[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(hi01, hi23));
  out[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(hi01, hi23));
}

// NW rows of W against R inputs in the AVX2 order. Per 32 weights of a row:
// one decode, then four FMAs per input into the row's block accumulator; per
// block one FMA by the scale into the total. The order per (row, input) is
// the same for every NW.
template <int R, int NW>
void pass(const BytePlanes& t, const uint8_t* codes, int64_t K, int bs, const float* scales,
          const float* Xp, float* dots) {
  const __m256i shift = _mm256_setr_epi32(4, 4, 4, 4, 0, 0, 0, 0);
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const int64_t row_bytes = K / 2, nb = K / bs;
  __m256 tot[NW][R];
  for (int w = 0; w < NW; ++w)
    for (int r = 0; r < R; ++r) tot[w][r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256 acc[NW][R];
    for (int w = 0; w < NW; ++w)
      for (int r = 0; r < R; ++r) acc[w][r] = _mm256_setzero_ps();
    for (int w = 0; w < NW; ++w)  // see nf4_avx512.cpp
      prefetch(codes, (w + kPrefetchRows) * row_bytes + b * bs / 2);
    for (int64_t e = b * bs, e_end = e + bs; e < e_end; e += 32) {
      for (int w = 0; w < NW; ++w) {
        __m256 v[4];
        decode32(codes + w * row_bytes + e / 2, t, shift, nibble, v);
        for (int r = 0; r < R; ++r) {
          const float* x = Xp + r * K + e;
          acc[w][r] = _mm256_fmadd_ps(v[0], _mm256_loadu_ps(x), acc[w][r]);
          acc[w][r] = _mm256_fmadd_ps(v[1], _mm256_loadu_ps(x + 8), acc[w][r]);
          acc[w][r] = _mm256_fmadd_ps(v[2], _mm256_loadu_ps(x + 16), acc[w][r]);
          acc[w][r] = _mm256_fmadd_ps(v[3], _mm256_loadu_ps(x + 24), acc[w][r]);
        }
      }
    }
    for (int w = 0; w < NW; ++w) {
      const __m256 s = _mm256_set1_ps(scales[w * nb + b]);
      for (int r = 0; r < R; ++r) tot[w][r] = _mm256_fmadd_ps(acc[w][r], s, tot[w][r]);
    }
  }
  for (int w = 0; w < NW; ++w)
    for (int r = 0; r < R; ++r) dots[w * R + r] = hsum(tot[w][r]);
}

// nw rows in passes of NW (16 ymm registers: 4 byte planes, 2 masks, 4
// decoded vectors, 2 x NW x R accumulators), the rest one row at a time.
// With one input, 2 rows a pass measured as fast as 4 and ~10% faster than 1.
template <int R, int NW>
void rows(int nw, const uint8_t* codes, int64_t K, int bs, const float* scales, const float* Xp,
          float* dots) {
  const BytePlanes t;
  const int64_t nb = K / bs;
  int w = 0;
  for (; w + NW <= nw; w += NW)
    pass<R, NW>(t, codes + w * (K / 2), K, bs, scales + w * nb, Xp, dots + w * R);
  for (; w < nw; ++w) pass<R, 1>(t, codes + w * (K / 2), K, bs, scales + w * nb, Xp, dots + w * R);
}

}  // namespace

void gemv_pass_avx2(int M, int nw, const uint8_t* codes, int64_t K, int blocksize,
                    const float* scales, const float* Xp, float* dots) {
  switch (M) {
    case 1: return rows<1, 2>(nw, codes, K, blocksize, scales, Xp, dots);
    case 2: return rows<2, 1>(nw, codes, K, blocksize, scales, Xp, dots);
    case 3: return rows<3, 1>(nw, codes, K, blocksize, scales, Xp, dots);
    default: return rows<4, 1>(nw, codes, K, blocksize, scales, Xp, dots);
  }
}

}  // namespace nf4k
}  // namespace ps
