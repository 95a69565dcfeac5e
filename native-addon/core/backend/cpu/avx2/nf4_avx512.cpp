// AVX-512F pass of the aligned NF4 GEMV (generation at batch 1..4): the
// whole 16-entry code table sits in one zmm register, so a lookup of 16
// codes is a single permute (vpermps uses the low 4 bits of each index).
// Per 16 bytes (32 weights) of a row: one zero-extending load to 16 dwords,
// the low nibbles (odd elements) looked up as they are, the high ones (even
// elements) after one shift, then two FMAs per input against the paired
// inputs (16 even, then 16 odd; see pair_inputs) — about 5 instructions per
// 32 weights, against ~14 for the AVX2 pass (byte-plane pshufb lookups).
//
// This file sits with the AVX2 sources (built with -mavx2 -mfma and
// -ffp-contract=off) and enables AVX-512F per function with a target
// attribute, as gemm_avx512.cpp does; it is entered only after
// avx512_gemv_supported() said yes. No standard-library template is used.
#include <immintrin.h>

#include <cstdint>

#include "../nf4_kernels.h"
#include "quant/nf4_tables.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define PS_NF4_AVX512 1
#define PS_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() (a value
// initialised from itself), which -Wuninitialized reports at every inlined
// call in a target-attribute function: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace ps {
namespace nf4k {

#if defined(PS_NF4_AVX512)

namespace {

// How far ahead (in rows of W) the codes are prefetched: two groups of 4.
constexpr int64_t kPrefetchRows = 8;

// A hint to fetch codes + offset's line; past the last row it does nothing
// (a prefetch never faults; the address is formed as an integer, not as an
// out-of-range pointer).
inline void prefetch(const uint8_t* codes, int64_t offset) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(codes) + offset), _MM_HINT_T0);
}

// Fixed-order horizontal sum: upper 256 bits onto the lower, then 8 -> 1.
PS_TARGET_AVX512 inline float hsum512(__m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// NW rows of W against R paired inputs; each decoded vector serves R inputs
// and each input load serves NW rows. The order per (row, input) is the same
// for every NW and R: per block, acc = fma(hi, x_even, acc), fma(lo, x_odd,
// acc) over the block's 32-weight runs, then tot = fma(acc, absmax, tot).
template <int R, int NW>
PS_TARGET_AVX512 void pass(const uint8_t* codes, int64_t K, int bs, const float* scales,
                           const float* Xp, float* dots) {
  const __m512 table = _mm512_loadu_ps(nf4_code_table());
  const int64_t row_bytes = K / 2, nb = K / bs;
  __m512 tot[NW][R];
  for (int w = 0; w < NW; ++w)
    for (int r = 0; r < R; ++r) tot[w][r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m512 acc[NW][R];
    for (int w = 0; w < NW; ++w)
      for (int r = 0; r < R; ++r) acc[w][r] = _mm512_setzero_ps();
    // The rows kPrefetchRows ahead (the group after next) are requested now:
    // without it the stream of codes waited on memory (~1.3x slower).
    for (int w = 0; w < NW; ++w)
      prefetch(codes, (w + kPrefetchRows) * row_bytes + b * bs / 2);
    for (int64_t e = b * bs, e_end = e + bs; e < e_end; e += 32) {
      __m512 hi[NW], lo[NW];
      for (int w = 0; w < NW; ++w) {
        const __m128i bytes =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + w * row_bytes + e / 2));
        const __m512i v = _mm512_cvtepu8_epi32(bytes);
        hi[w] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), table);
        lo[w] = _mm512_permutexvar_ps(v, table);
      }
      for (int r = 0; r < R; ++r) {
        const __m512 x_even = _mm512_loadu_ps(Xp + r * K + e);
        const __m512 x_odd = _mm512_loadu_ps(Xp + r * K + e + 16);
        for (int w = 0; w < NW; ++w) {
          acc[w][r] = _mm512_fmadd_ps(hi[w], x_even, acc[w][r]);
          acc[w][r] = _mm512_fmadd_ps(lo[w], x_odd, acc[w][r]);
        }
      }
    }
    for (int w = 0; w < NW; ++w) {
      const __m512 s = _mm512_set1_ps(scales[w * nb + b]);
      for (int r = 0; r < R; ++r) tot[w][r] = _mm512_fmadd_ps(acc[w][r], s, tot[w][r]);
    }
  }
  for (int w = 0; w < NW; ++w)
    for (int r = 0; r < R; ++r) dots[w * R + r] = hsum512(tot[w][r]);
}

// nw rows in passes of NW (32 zmm registers: 2 x NW x R accumulators, NW
// decoded pairs and the table fit for NW x R <= 8), the rest one at a time.
template <int R, int NW>
PS_TARGET_AVX512 void rows(int nw, const uint8_t* codes, int64_t K, int bs, const float* scales,
                           const float* Xp, float* dots) {
  const int64_t nb = K / bs;
  int w = 0;
  for (; w + NW <= nw; w += NW)
    pass<R, NW>(codes + w * (K / 2), K, bs, scales + w * nb, Xp, dots + w * R);
  for (; w < nw; ++w) pass<R, 1>(codes + w * (K / 2), K, bs, scales + w * nb, Xp, dots + w * R);
}

}  // namespace

bool avx512_gemv_supported() {
  // libgcc's check includes the OS having enabled the zmm register state.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
}

PS_TARGET_AVX512 void gemv_pass_avx512(int M, int nw, const uint8_t* codes, int64_t K,
                                       int blocksize, const float* scales, const float* Xp,
                                       float* dots) {
  switch (M) {
    case 1: return rows<1, 4>(nw, codes, K, blocksize, scales, Xp, dots);
    case 2: return rows<2, 4>(nw, codes, K, blocksize, scales, Xp, dots);
    case 3: return rows<3, 2>(nw, codes, K, blocksize, scales, Xp, dots);
    default: return rows<4, 2>(nw, codes, K, blocksize, scales, Xp, dots);
  }
}

#else  // no GCC-style target attributes: the AVX2 pass serves
}  // namespace nf4k
}  // namespace ps
#include "error.h"  // only here: this file otherwise avoids standard-library templates
namespace ps {
namespace nf4k {

bool avx512_gemv_supported() { return false; }
// Never offered (avx512_gemv_supported() is false), so never called: its inputs
// would be in the AVX-512 pair order, which the AVX2 pass does not read.
void gemv_pass_avx512(int, int, const uint8_t*, int64_t, int, const float*, const float*, float*) {
  throw Error("internal: the AVX-512 NF4 GEMV pass is not built on this compiler");
}

#endif

}  // namespace nf4k
}  // namespace ps
