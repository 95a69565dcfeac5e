// Shared pieces of the op tests (test_ops.cpp, test_attention.cpp,
// test_rope_tables.cpp): seeded random data, element-wise comparison with a
// report of the worst element, central finite differences of a scalar loss
// L = sum(G * out) whose forward runs in fp32 and is summed in double, and
// whether a call rejects its input with ps::Error.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "error.h"

namespace optest {

// xorshift64*: small, seeded, the same on every platform.
class Rand {
 public:
  explicit Rand(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  float uniform(float lo, float hi) { return static_cast<float>(lo + (hi - lo) * unit()); }
  int integer(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }

 private:
  uint64_t s_;
};

inline std::vector<float> random_vec(size_t n, Rand& r, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = r.uniform(lo, hi);
  return v;
}

// Every element within atol + rtol * |want|; on failure names the worst one.
template <typename Want>
inline void expect_close(const std::string& what, const float* got, const Want* want, size_t n,
                         double rtol, double atol) {
  size_t bad = 0, worst = 0;
  double worst_excess = -1.0;
  for (size_t i = 0; i < n; ++i) {
    const double g = got[i], w = static_cast<double>(want[i]);
    const double err = std::fabs(g - w), lim = atol + rtol * std::fabs(w);
    if (!(err <= lim)) {
      ++bad;
      const double excess = std::isnan(err) ? 1e300 : err / lim;
      if (excess > worst_excess) worst_excess = excess, worst = i;
    }
  }
  if (bad)
    pstest::fail(__FILE__, __LINE__,
                 what + ": " + std::to_string(bad) + " of " + std::to_string(n) +
                     " elements off; worst [" + std::to_string(worst) + "] got " +
                     std::to_string(got[worst]) + " want " +
                     std::to_string(static_cast<double>(want[worst])));
}

template <typename Want>
inline void expect_close(const std::string& what, const std::vector<float>& got,
                         const std::vector<Want>& want, double rtol, double atol) {
  if (got.size() != want.size()) {
    pstest::fail(__FILE__, __LINE__, what + ": size mismatch");
    return;
  }
  expect_close(what, got.data(), want.data(), got.size(), rtol, atol);
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// sum_i g[i] * out[i] in double.
inline double weighted_sum(const std::vector<float>& g, const float* out) {
  double s = 0.0;
  for (size_t i = 0; i < g.size(); ++i) s += static_cast<double>(g[i]) * out[i];
  return s;
}

// dL/dx[i] by central differences; the divisor is the step actually stored
// in fp32, so rounding of x +- h is not counted as error.
template <typename Loss>
inline double central_difference(std::vector<float>& x, size_t i, float h, Loss&& loss) {
  const float orig = x[i];
  const float plus = orig + h, minus = orig - h;
  x[i] = plus;
  const double lp = loss();
  x[i] = minus;
  const double lm = loss();
  x[i] = orig;
  return (lp - lm) / (static_cast<double>(plus) - minus);
}

// `count` indices: the largest |grad| entries first (a wrong gradient shows
// most there), then random ones.
inline std::vector<size_t> probe_indices(const std::vector<float>& grad, size_t count, Rand& r) {
  std::vector<size_t> idx;
  std::vector<bool> used(grad.size(), false);
  for (size_t k = 0; k < count / 2 && k < grad.size(); ++k) {
    size_t best = grad.size();
    for (size_t i = 0; i < grad.size(); ++i)
      if (!used[i] && (best == grad.size() || std::fabs(grad[i]) > std::fabs(grad[best]))) best = i;
    used[best] = true;
    idx.push_back(best);
  }
  while (idx.size() < count && idx.size() < grad.size()) {
    const size_t i = static_cast<size_t>(r.next() % grad.size());
    if (!used[i]) used[i] = true, idx.push_back(i);
  }
  return idx;
}

// The analytic gradient against central differences at the probe indices:
// |fd - analytic| <= atol + rtol * |analytic|.
template <typename Loss>
inline void expect_fd(const std::string& what, std::vector<float>& x,
                      const std::vector<float>& analytic, size_t probes, float h, double rtol,
                      double atol, Rand& r, Loss&& loss) {
  for (size_t i : probe_indices(analytic, probes, r)) {
    const double fd = central_difference(x, i, h, loss);
    if (!pstest::close(fd, analytic[i], rtol, atol))
      pstest::fail(__FILE__, __LINE__,
                   what + " [" + std::to_string(i) + "]: finite difference " + std::to_string(fd) +
                       ", analytic " + std::to_string(analytic[i]));
  }
}

// True when fn() throws ps::Error (the engine's error for bad input); any
// other exception propagates and fails the test.
template <typename Fn>
inline bool throws_error(Fn&& fn) {
  try {
    fn();
  } catch (const ps::Error&) {
    return true;
  }
  return false;
}

}  // namespace optest
