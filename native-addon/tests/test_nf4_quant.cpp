// NF4 quantization (core/quant) against an independent float64 implementation
// of bitsandbytes' algorithm (../shared/reference/nf4.md).
//
// The reference below is written from the algorithm's description, not from
// the library code: float64 arithmetic with every step the algorithm performs
// in fp32 rounded to fp32 explicitly (a product of two floats is exact in
// double, so rounding it once gives the fp32 product; a fused multiply-add of
// the linspace is exact in double for these magnitudes). With that, codes and
// scales must agree BIT FOR BIT, and they are compared exactly.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#include "threadpool.h"

namespace {

// ---- the float64 reference ------------------------------------------------
// NF4 values as the reference document lists them (decimal -> nearest fp32).
const double kDocNf4[16] = {-1.0,
                            -0.6961928009986877,
                            -0.5250730514526367,
                            -0.39491748809814453,
                            -0.28444138169288635,
                            -0.18477343022823334,
                            -0.09105003625154495,
                            0.0,
                            0.07958029955625534,
                            0.16093020141124725,
                            0.24611230194568634,
                            0.33791524171829224,
                            0.44070982933044434,
                            0.5626170039176941,
                            0.7229568362236023,
                            1.0};

double f32(double x) { return static_cast<double>(static_cast<float>(x)); }

std::vector<double> ref_nf4_table() {
  std::vector<double> t(16);
  for (int i = 0; i < 16; ++i) t[i] = f32(kDocNf4[i]);
  return t;
}

// create_dynamic_map(signed=True, 7, 8) in float64, fp32 steps rounded.
std::vector<double> ref_dynamic_map() {
  std::vector<double> m;
  const double start = f32(0.1), end = 1.0;
  for (int i = 0; i < 7; ++i) {
    const int n = (1 << i) + 1;
    const double step = f32((end - start) / (n - 1));  // fp32 (1 - 0.1f) is exact
    std::vector<double> b(n);
    for (int k = 0; k < n; ++k)  // one fused multiply-add, rounded once
      b[k] = k < n / 2 ? f32(start + step * k) : f32(end - step * (n - 1 - k));
    const double scale = f32(std::pow(10.0, i - 6));
    for (int k = 0; k + 1 < n; ++k) {
      const double mean = f32((b[k] + b[k + 1]) / 2.0);
      m.push_back(f32(scale * mean));
      m.push_back(-f32(scale * mean));
    }
  }
  m.push_back(0.0);
  m.push_back(1.0);
  std::sort(m.begin(), m.end());
  return m;
}

std::vector<double> midpoints(const std::vector<double>& t) {
  std::vector<double> mid;
  for (size_t k = 0; k + 1 < t.size(); ++k) mid.push_back(f32((t[k] + t[k + 1]) / 2.0));
  return mid;
}

// Blockwise: absmax, fp32 reciprocal (1e-38 for a zero block), fp32 product,
// clamp, number of midpoints strictly below (ties -> lower entry).
void ref_blockwise(const std::vector<double>& x, int bs, const std::vector<double>& mid,
                   std::vector<int>& codes, std::vector<double>& absmax) {
  const size_t n = x.size();
  codes.assign(n, -1);
  absmax.clear();
  for (size_t lo = 0; lo < n; lo += bs) {
    const size_t hi = std::min(n, lo + bs);
    double a = 0.0;
    for (size_t i = lo; i < hi; ++i) a = std::max(a, std::fabs(x[i]));
    absmax.push_back(a);
    const double recip = f32(1.0 / (a == 0.0 ? f32(1e-38) : a));
    for (size_t i = lo; i < hi; ++i) {
      double s = f32(x[i] * recip);
      s = std::min(1.0, std::max(-1.0, s));
      int c = 0;
      while (c < (int)mid.size() && mid[c] < s) ++c;
      codes[i] = c;
    }
  }
}

struct RefQuant {
  std::vector<int> codes;
  std::vector<double> absmax;        // fp32 absmax (no DQ) or the values before DQ
  std::vector<int> absmax_codes;
  std::vector<double> nested_absmax;
  double offset = 0.0;
};

RefQuant ref_quantize(const std::vector<float>& w, int bs, bool dq) {
  RefQuant r;
  std::vector<double> x(w.begin(), w.end());
  ref_blockwise(x, bs, midpoints(ref_nf4_table()), r.codes, r.absmax);
  if (dq) {
    double sum = 0.0;
    for (double a : r.absmax) sum += a;
    r.offset = f32(sum / r.absmax.size());
    std::vector<double> centred;
    for (double a : r.absmax) centred.push_back(f32(a - r.offset));
    ref_blockwise(centred, 256, midpoints(ref_dynamic_map()), r.absmax_codes, r.nested_absmax);
  }
  return r;
}

int code_at(const ps::Nf4Quantized& q, int64_t i) {
  const uint8_t b = q.codes[i >> 1];
  return (i & 1) ? (b & 15) : (b >> 4);
}

// Quantize with the library and with the reference; everything must match.
void check_against_reference(const std::string& what, const std::vector<float>& w, int64_t rows,
                             int64_t cols, int bs, bool dq, ps::ThreadPool* pool = nullptr) {
  const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), rows, cols, bs, dq, pool);
  const RefQuant r = ref_quantize(w, bs, dq);
  const int64_t n = rows * cols;
  int bad_codes = 0, bad_scales = 0;
  CHECK((int64_t)q.codes.size() == (n + 1) / 2);
  for (int64_t i = 0; i < n; ++i) bad_codes += code_at(q, i) != r.codes[i];
  if (n % 2) CHECK((q.codes.back() & 15) == 0);  // the padding nibble stays zero
  if (!dq) {
    CHECK(q.absmax.size() == r.absmax.size());
    for (size_t b = 0; b < r.absmax.size() && b < q.absmax.size(); ++b)
      bad_scales += (double)q.absmax[b] != r.absmax[b];
    CHECK(q.absmax_codes.empty());
  } else {
    CHECK(q.absmax.empty());
    CHECK(q.absmax_codes.size() == r.absmax_codes.size());
    CHECK(q.nested_absmax.size() == r.nested_absmax.size());
    CHECK((double)q.nested_offset == r.offset);
    for (size_t b = 0; b < r.absmax_codes.size() && b < q.absmax_codes.size(); ++b)
      bad_scales += q.absmax_codes[b] != r.absmax_codes[b];
    for (size_t b = 0; b < r.nested_absmax.size() && b < q.nested_absmax.size(); ++b)
      bad_scales += (double)q.nested_absmax[b] != r.nested_absmax[b];
  }
  if (bad_codes || bad_scales)
    pstest::fail(__FILE__, __LINE__,
                 what + ": " + std::to_string(bad_codes) + " codes and " +
                     std::to_string(bad_scales) + " scales differ from the float64 reference");

  // Dequantize: w = code * absmax in fp32; with DQ absmax = map*nested + offset,
  // two fp32 roundings (bitsandbytes dequantizes the absmax, then adds).
  std::vector<float> got(n);
  ps::nf4_dequantize_reference(q.view(), got.data());
  const std::vector<double> table = ref_nf4_table(), map = ref_dynamic_map();
  int bad_deq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = i / bs;
    const double amax = dq ? f32(f32(map[r.absmax_codes[b]] * r.nested_absmax[b / 256]) + r.offset)
                           : r.absmax[b];
    bad_deq += (double)got[i] != f32(table[r.codes[i]] * amax);
  }
  if (bad_deq)
    pstest::fail(__FILE__, __LINE__, what + ": " + std::to_string(bad_deq) + " dequantized values differ");
}

std::vector<float> normal_weights(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> w(n);
  for (auto& x : w) x = d(rng);
  return w;
}

void test_tables() {
  const float* t = ps::nf4_code_table();
  const std::vector<double> want = ref_nf4_table();
  for (int i = 0; i < 16; ++i) CHECK((double)t[i] == want[i]);
  CHECK(t[7] == 0.0f && t[0] == -1.0f && t[15] == 1.0f);

  const float* m = ps::dynamic_map_signed();
  const std::vector<double> ref = ref_dynamic_map();
  CHECK(ref.size() == 256);
  int diff = 0;
  for (int i = 0; i < 256; ++i) diff += (double)m[i] != ref[i];
  CHECK(diff == 0);
  for (int i = 0; i + 1 < 256; ++i) CHECK(m[i] < m[i + 1]);  // sorted, no duplicate (no padding zeros)
  CHECK(m[127] == 0.0f && m[255] == 1.0f);
  for (int i = 0; i < 127; ++i) CHECK(m[i] == -m[254 - i]);  // symmetric except the 1.0
  // Entries of the map as torch prints it for bitsandbytes (the fp32 values
  // published by projects that embed the table). These ones tell the fused
  // linspace (what torch computes) from an unfused one.
  struct Known { int i; double v; };
  const Known known[] = {{0, -0.992968738079071},    {1, -0.9789062738418579},
                         {20, -0.7117187976837158},  {25, -0.6414062976837158},
                         {36, -0.48671871423721313}, {41, -0.4164062440395355},
                         {65, -0.09578125923871994}, {70, -0.08171875774860382},
                         {102, -0.006343749817460775}, {126, -5.500000384017767e-07},
                         {128, 5.500000384017767e-07}, {217, 0.47265625},
                         {234, 0.7117187976837158},  {254, 0.992968738079071}};
  for (const Known& k : known)
    if ((double)m[k.i] != f32(k.v))
      pstest::fail(__FILE__, __LINE__, "dynamic map entry " + std::to_string(k.i) + " is " +
                                           std::to_string(m[k.i]) + ", torch gives " + std::to_string(k.v));
}

void test_random_shapes() {
  struct Case { int64_t rows, cols; int bs; };
  const Case cases[] = {{1, 1, 64},    {1, 7, 64},    {3, 5, 32},     {7, 33, 64},   {64, 64, 64},
                        {13, 100, 128}, {5, 999, 256}, {33, 577, 64}, {2, 3000, 4096}, {300, 301, 64},
                        {1, 64 * 256 + 1, 64}, {40, 1537, 32}};
  for (const Case& c : cases)
    for (bool dq : {false, true}) {
      const auto w = normal_weights((size_t)(c.rows * c.cols), (uint32_t)(c.rows * 131 + c.cols), 0.02f);
      check_against_reference("random [" + std::to_string(c.rows) + "x" + std::to_string(c.cols) +
                                  "] bs=" + std::to_string(c.bs) + (dq ? " dq" : ""),
                              w, c.rows, c.cols, c.bs, dq);
    }
  // A weight large enough to be quantized across a pool (as a model load
  // does), in chunks that split its 4693 blocks unevenly.
  ps::ThreadPool pool(3);
  for (bool dq : {false, true}) {
    const auto w = normal_weights(300 * 1001, 17, 0.02f);
    check_against_reference(std::string("pooled [300x1001] bs=64") + (dq ? " dq" : ""), w, 300, 1001, 64, dq,
                            &pool);
  }
}

void test_zero_blocks() {
  // Block 0 all zeros, block 1 normal, block 2 partial and zero.
  std::vector<float> w(64 * 2 + 9, 0.0f);
  auto r = normal_weights(64, 7, 1.0f);
  for (int i = 0; i < 64; ++i) w[64 + i] = r[i];
  for (bool dq : {false, true}) {
    check_against_reference(std::string("zero blocks") + (dq ? " dq" : ""), w, 1, (int64_t)w.size(), 64, dq);
    const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), 1, (int64_t)w.size(), 64, dq);
    for (int i = 0; i < 64; ++i) CHECK(code_at(q, i) == 7);          // 0 * (1/1e-38) = 0 -> the zero code
    for (int i = 128; i < 137; ++i) CHECK(code_at(q, i) == 7);
    if (!dq) CHECK(q.absmax[0] == 0.0f && q.absmax[2] == 0.0f);
    std::vector<float> back(w.size());
    ps::nf4_dequantize_reference(q.view(), back.data());
    if (!dq)
      for (int i = 0; i < 64; ++i) CHECK(back[i] == 0.0f);
  }
  // An all-zero weight (every absmax 0; DQ then quantizes a zero block too).
  std::vector<float> z(3 * 70, 0.0f);
  for (bool dq : {false, true}) {
    check_against_reference("all zeros", z, 3, 70, 64, dq);
    const ps::Nf4Quantized q = ps::nf4_quantize(z.data(), 3, 70, 64, dq);
    std::vector<float> back(z.size());
    ps::nf4_dequantize_reference(q.view(), back.data());
    for (float v : back) CHECK(v == 0.0f);
  }
}

void test_midpoints_and_extremes() {
  // absmax = 1 (an element is 1.0), so the reciprocal is 1 and the scaled
  // value is the weight itself: put values exactly on each fp32 midpoint and
  // one ulp either side.
  const float* t = ps::nf4_code_table();
  std::vector<float> w = {1.0f};
  std::vector<int> want = {15};
  for (int k = 0; k < 15; ++k) {
    const float m = (t[k] + t[k + 1]) / 2.0f;
    w.push_back(m), want.push_back(k);  // exactly on it: the LOWER code
    w.push_back(std::nextafter(m, 2.0f)), want.push_back(k + 1);
    w.push_back(std::nextafter(m, -2.0f)), want.push_back(k);
  }
  w.push_back(-1.0f), want.push_back(0);  // -absmax
  for (int k = 0; k < 16; ++k) w.push_back(t[k]), want.push_back(k);  // the codes themselves
  CHECK(w.size() <= 64);
  const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), 1, (int64_t)w.size(), 64, false);
  int bad = 0;
  for (size_t i = 0; i < w.size(); ++i) bad += code_at(q, (int64_t)i) != want[i];
  CHECK(bad == 0);
  check_against_reference("midpoints", w, 1, (int64_t)w.size(), 64, false);

  // +-absmax with an arbitrary scale: x * (1/x) may round to 1 + ulp; clamped.
  auto r = normal_weights(64, 11, 3.0f);
  float amax = 0;
  int at = 0;
  for (int i = 0; i < 64; ++i)
    if (std::fabs(r[i]) > amax) amax = std::fabs(r[i]), at = i;
  r[(at + 1) % 64] = -amax;
  const ps::Nf4Quantized q2 = ps::nf4_quantize(r.data(), 1, 64, 64, false);
  CHECK(code_at(q2, at) == (r[at] > 0 ? 15 : 0));
  CHECK(code_at(q2, (at + 1) % 64) == 0);
  check_against_reference("+-absmax", r, 1, 64, 64, false);

  // Not covered here: an absmax exactly on a midpoint of the 8-bit dynamic
  // map. (absmax - mean) * (1 / nested absmax) is rounded twice in fp32, so
  // a tie cannot be placed by construction for most map entries, and random
  // values essentially never land on one. The 8-bit codes of every case above
  // are compared bit for bit with the float64 reference, which uses the same
  // ties-to-the-lower-entry rule.
}

void test_resident_bytes() {
  // SmolLM2-135M's shapes: 576x576 (q, o), 192x576 (k, v), 1536x576 (gate, up), 576x1536 (down).
  const int64_t shapes[][2] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}};
  for (const auto& s : shapes) {
    const int64_t n = s[0] * s[1];
    const auto w = normal_weights((size_t)n, 3, 0.02f);
    const ps::Nf4Quantized dq = ps::nf4_quantize(w.data(), s[0], s[1], 64, true);
    const int64_t blocks = (n + 63) / 64;
    const size_t want = (size_t)((n + 1) / 2 + blocks + 4 * ((blocks + 255) / 256) + 4);
    CHECK(dq.resident_bytes() == want);
    const double bits = 8.0 * dq.resident_bytes() / n;
    // 4 + 8/64 + 32/(64*256) = 4.12695; a partial nested block adds < 32/n.
    CHECK(bits >= 4.1269 && bits <= 4.12695 + 8.0 * 8 / n);
    const ps::Nf4Quantized plain = ps::nf4_quantize(w.data(), s[0], s[1], 64, false);
    CHECK_CLOSE(8.0 * plain.resident_bytes() / n, 4.5, 0, 1e-12);
    std::printf("  [%lld x %lld] NF4+DQ %.5f bits/param, NF4 %.5f bits/param\n", (long long)s[0],
                (long long)s[1], bits, 8.0 * plain.resident_bytes() / n);
  }
}

void test_errors() {
  std::vector<float> w(64, 0.5f);
  auto throws = [&](auto fn) {
    try {
      fn();
    } catch (const ps::Error&) {
      return true;
    }
    return false;
  };
  for (int bs : {0, 16, 48, 100, 8192, -64})
    CHECK(throws([&] { ps::nf4_quantize(w.data(), 1, 64, bs, true); }));
  for (int bs : {32, 64, 128, 256, 512, 1024, 2048, 4096})
    CHECK(!throws([&] { ps::nf4_quantize(w.data(), 1, 64, bs, true); }));
  CHECK(throws([&] { ps::nf4_quantize(w.data(), 0, 64, 64, true); }));
  w[17] = std::numeric_limits<float>::quiet_NaN();
  CHECK(throws([&] { ps::nf4_quantize(w.data(), 2, 32, 64, true); }));
  w[17] = std::numeric_limits<float>::infinity();
  CHECK(throws([&] { ps::nf4_quantize(w.data(), 2, 32, 64, false); }));
  ps::Nf4Weight empty;
  CHECK(throws([&] { ps::nf4_check_weight(empty, "test"); }));
}

void test_backend_dequantize() {
  const auto w = normal_weights(37 * 91, 5, 0.05f);
  for (bool dq : {false, true})
    for (int bs : {32, 64, 256}) {
      const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), 37, 91, bs, dq);
      std::vector<float> a(w.size()), b(w.size());
      ps::nf4_dequantize_reference(q.view(), a.data());
      for (bool portable : {true, false}) {
        ps::CpuBackend be(2, portable);
        be.nf4_dequantize(q.view(), b.data());
        int bad = 0;
        for (size_t i = 0; i < a.size(); ++i) bad += a[i] != b[i];
        CHECK(bad == 0);
      }
    }
}

}  // namespace

int main() {
  test_tables();
  test_random_shapes();
  test_zero_blocks();
  test_midpoints_and_extremes();
  test_resident_bytes();
  test_errors();
  test_backend_dequantize();
  return pstest::finish("test_nf4_quant");
}
