#include "quant/nf4_quantize.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "error.h"
#include "weight_gemm_args.h"
#include "quant/nf4_tables.h"
#include "threadpool.h"

namespace ps {

namespace {

// bitsandbytes divides a block of zeros by this instead of 0. In fp32 it is a
// subnormal (~9.99995e-39); its reciprocal ~1.00000e38 is still finite, so
// 0 * recip = 0 and every value of the block maps to the zero code.
constexpr float kZeroBlockDivisor = 1e-38f;

// Midpoints between neighbouring entries of an ascending table, in fp32.
// (a + b) / 2 in fp32 equals the exact midpoint rounded once: the halving is
// exact at these magnitudes.
template <int N>
std::array<float, N - 1> midpoints_of(const float* table) {
  std::array<float, N - 1> mid{};
  for (int k = 0; k + 1 < N; ++k) mid[k] = (table[k] + table[k + 1]) / 2.0f;
  return mid;
}

// Index of the nearest table entry: the number of midpoints strictly below
// x, so a value exactly on a midpoint takes the LOWER entry (torch.bucketize
// with right=False, as bitsandbytes). For the 15 NF4 midpoints that count is
// taken branch-free (a binary search there mispredicts about half of its four
// branches per weight); for the 255 of the 8-bit map, by binary search. Both
// give lower_bound's index, since the midpoints ascend.
template <size_t M>
inline int nearest_index(float x, const std::array<float, M>& mid) {
  if constexpr (M <= 15) {
    int below = 0;
    for (size_t k = 0; k < M; ++k) below += mid[k] < x ? 1 : 0;
    return below;
  } else {
    return static_cast<int>(std::lower_bound(mid.begin(), mid.end(), x) - mid.begin());
  }
}

// The blockwise rule shared by the 4-bit weights and the 8-bit absmax values:
// per block of `blocksize` consecutive values (the last may be partial), store
// absmax = max|x|, multiply each value by the fp32 reciprocal 1/absmax, clamp
// to [-1, 1] and take the nearest table entry. Runs blocks [b0, b1) of the n
// values; emit(lo, hi, index) receives each block's table indices
// (index[i - lo] for value i), computed first in a loop of their own so that
// the compiler can vectorize it.
template <size_t M, typename Emit>
void quantize_blocks(const float* x, int64_t n, int blocksize, const std::array<float, M>& mid,
                     float* absmax, int64_t b0, int64_t b1, Emit&& emit) {
  uint8_t index[4096];  // the largest blocksize
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t lo = b * blocksize, hi = std::min<int64_t>(n, lo + blocksize);
    const float* v = x + lo;
    const int count = static_cast<int>(hi - lo);
    float amax = 0.0f;
    for (int i = 0; i < count; ++i) amax = std::max(amax, std::fabs(v[i]));
    absmax[b] = amax;
    const float recip = 1.0f / (amax == 0.0f ? kZeroBlockDivisor : amax);
    for (int i = 0; i < count; ++i) {
      const float scaled = std::min(1.0f, std::max(-1.0f, v[i] * recip));
      index[i] = static_cast<uint8_t>(nearest_index(scaled, mid));
    }
    emit(lo, hi, index);
  }
}

int64_t blocks_of(int64_t n, int blocksize) { return (n + blocksize - 1) / blocksize; }

// Fewer values than this are quantized on the calling thread: handing them to
// the pool would cost more than it saves.
constexpr int64_t kParallelMinValues = int64_t(1) << 16;

// fn(b0, b1) over the blocks of n values: with a pool (and enough values), in
// the pool's static contiguous chunks of whole blocks, else in one call. Every
// block's result depends on that block's values alone, so the split cannot
// change it.
void for_blocks(ThreadPool* pool, int64_t n, int blocksize,
                const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t nb = blocks_of(n, blocksize);
  if (pool && pool->size() > 1 && n >= kParallelMinValues) {
    pool->parallel_for(static_cast<size_t>(nb), [&](size_t b0, size_t b1, int) {
      fn(static_cast<int64_t>(b0), static_cast<int64_t>(b1));
    });
  } else {
    fn(0, nb);
  }
}

// Throws naming the first non-finite value of w (row-major, `cols` wide).
// The scan runs in the pool's chunks; only a failing weight is rescanned
// serially, so the message names the same (first) position whatever the split.
void check_finite(const float* w, int64_t n, int64_t cols, ThreadPool* pool) {
  std::atomic<bool> bad{false};
  auto scan = [&](int64_t b, int64_t e) {
    bool ok = true;
    for (int64_t i = b; i < e; ++i) ok &= std::isfinite(w[i]);
    if (!ok) bad.store(true, std::memory_order_relaxed);
  };
  if (pool && pool->size() > 1 && n >= kParallelMinValues)
    pool->parallel_for(static_cast<size_t>(n), [&](size_t b, size_t e, int) {
      scan(static_cast<int64_t>(b), static_cast<int64_t>(e));
    });
  else
    scan(0, n);
  if (!bad.load()) return;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i]))
      throw Error("nf4_quantize: the weight holds a non-finite value at row " +
                  std::to_string(i / cols) + ", column " + std::to_string(i % cols) +
                  "; fix the checkpoint before quantizing");
}

const std::array<float, 15>& nf4_midpoints() {
  static const std::array<float, 15> mid = midpoints_of<16>(nf4_code_table());
  return mid;
}

const std::array<float, 255>& dynamic_midpoints() {
  static const std::array<float, 255> mid = midpoints_of<256>(dynamic_map_signed());
  return mid;
}

}  // namespace

void nf4_check_blocksize(int blocksize) {
  const bool power_of_two = blocksize > 0 && (blocksize & (blocksize - 1)) == 0;
  if (!power_of_two || blocksize < 32 || blocksize > 4096)
    throw Error("NF4 blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096 "
                "(bitsandbytes' sizes; the default is 64), got " +
                std::to_string(blocksize));
}

Nf4Quantized nf4_quantize(const float* w, int64_t rows, int64_t cols, int blocksize,
                          bool double_quant, ThreadPool* pool) {
  nf4_check_blocksize(blocksize);
  if (rows <= 0 || cols <= 0)
    throw Error("nf4_quantize: the weight shape must be positive, got [" + std::to_string(rows) +
                ", " + std::to_string(cols) + "]");
  if (rows > std::numeric_limits<int>::max() || cols > std::numeric_limits<int>::max())
    throw Error("nf4_quantize: a dimension of [" + std::to_string(rows) + ", " +
                std::to_string(cols) + "] exceeds 2^31-1");
  const int64_t n = rows * cols;
  check_finite(w, n, cols, pool);

  Nf4Quantized q;
  q.rows = rows;
  q.cols = cols;
  q.blocksize = blocksize;
  q.codes.assign(static_cast<size_t>((n + 1) / 2), 0);  // an odd count leaves a zero low nibble
  std::vector<float> absmax(static_cast<size_t>(blocks_of(n, blocksize)));
  uint8_t* codes = q.codes.data();
  const auto& mid = nf4_midpoints();
  // A block starts at an even element (blocksize is a power of two >= 32), so
  // each block owns whole bytes of codes and the chunks never share a byte.
  for_blocks(pool, n, blocksize, [&](int64_t b0, int64_t b1) {
    quantize_blocks(w, n, blocksize, mid, absmax.data(), b0, b1,
                    [codes](int64_t lo, int64_t hi, const uint8_t* c) {
                      // element 2j -> high nibble, 2j+1 -> low nibble; lo is even
                      uint8_t* out = codes + lo / 2;
                      const int64_t count = hi - lo;
                      for (int64_t k = 0; k + 1 < count; k += 2)
                        out[k / 2] = static_cast<uint8_t>(c[k] << 4 | c[k + 1]);
                      if (count & 1)  // an odd total: the last low nibble stays zero
                        out[count / 2] = static_cast<uint8_t>(c[count - 1] << 4);
                    });
  });

  if (!double_quant) {
    q.absmax = std::move(absmax);
    return q;
  }
  // Double quantization: subtract the mean of the absmax values (fp32 result,
  // summed in double, serially in block order: the sum's rounding depends on
  // the order), then quantize them blockwise (256) with the signed dynamic
  // 8-bit map.
  const int64_t nb = static_cast<int64_t>(absmax.size());
  double sum = 0.0;
  for (float a : absmax) sum += a;
  q.nested_offset = static_cast<float>(sum / static_cast<double>(nb));
  for (float& a : absmax) a -= q.nested_offset;
  q.absmax_codes.assign(static_cast<size_t>(nb), 0);
  q.nested_absmax.assign(static_cast<size_t>(blocks_of(nb, kNf4NestedBlocksize)), 0.0f);
  uint8_t* acodes = q.absmax_codes.data();
  const auto& dmid = dynamic_midpoints();
  for_blocks(pool, nb, kNf4NestedBlocksize, [&](int64_t b0, int64_t b1) {
    quantize_blocks(absmax.data(), nb, kNf4NestedBlocksize, dmid, q.nested_absmax.data(), b0, b1,
                    [acodes](int64_t lo, int64_t hi, const uint8_t* c) {
                      std::copy(c, c + (hi - lo), acodes + lo);
                    });
  });
  return q;
}

Nf4Weight Nf4Quantized::view() const {
  Nf4Weight W;
  W.rows = rows;
  W.cols = cols;
  W.blocksize = blocksize;
  W.codes = codes.data();
  if (double_quant()) {
    W.absmax_codes = absmax_codes.data();
    W.absmax_map = dynamic_map_signed();
    W.nested_absmax = nested_absmax.data();
    W.nested_blocksize = kNf4NestedBlocksize;
    W.nested_offset = nested_offset;
  } else {
    W.absmax = absmax.data();
  }
  return W;
}

size_t Nf4Quantized::resident_bytes() const {
  return codes.size() + absmax.size() * sizeof(float) + absmax_codes.size() +
         nested_absmax.size() * sizeof(float) + (double_quant() ? sizeof(float) : 0);
}

void nf4_check_weight(const Nf4Weight& W, const char* what) {
  auto fail = [&](const std::string& msg) { throw Error(std::string(what) + ": " + msg); };
  if (W.rows <= 0 || W.cols <= 0)
    fail("the 4-bit weight shape must be positive, got [" + std::to_string(W.rows) + ", " +
         std::to_string(W.cols) + "]");
  if (W.rows > std::numeric_limits<int>::max() || W.cols > std::numeric_limits<int>::max())
    fail("a dimension of the 4-bit weight exceeds 2^31-1");
  nf4_check_blocksize(W.blocksize);
  if (!W.codes) fail("the 4-bit weight has no codes");
  if (W.double_quantized()) {
    if (!W.absmax_map || !W.nested_absmax)
      fail("a double-quantized 4-bit weight needs its absmax map and nested absmax");
    if (W.nested_blocksize <= 0) fail("nested_blocksize must be positive");
  } else if (!W.absmax) {
    fail("the 4-bit weight has no absmax (neither fp32 nor double-quantized)");
  }
}

void nf4_dequantize_reference(const Nf4Weight& W, float* w) {
  const float* table = nf4_code_table();
  const int64_t n = W.numel();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t byte = W.codes[i >> 1];
    const int c = (i & 1) ? (byte & 0x0F) : (byte >> 4);
    w[i] = table[c] * W.block_absmax(i / W.blocksize);
  }
}

void nf4_check_gemm_args(const char* op, int M, const Nf4Weight& W, int ld_in, int ld_in_min, int ld_out,
                         int ld_out_min, float beta) {
  nf4_check_weight(W, op);
  check_weight_gemm_args(op, M, W.rows, W.cols, ld_in, ld_in_min, ld_out, ld_out_min, beta);
}

}  // namespace ps
