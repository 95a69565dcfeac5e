// Finite-difference gradient checks through a whole engine: central
// differences of the mean loss along a random direction over all checked
// tensors, and on single elements. The engine computes in fp32, so the loss
// carries rounding noise of about 1e-6 (relative 1e-7 on a loss near 4, times
// the depth of the computation); each check states the step it uses and the
// tolerance that follows from that noise.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "check.h"
#include "engine.h"
#include "rng.h"

namespace fd {

// Mean loss with the dropout counter fixed (same masks every call); grad_scale 0
// leaves the accumulated gradients untouched.
inline double mean_loss(ps::Engine& e, const ps::Batch& b, uint64_t counter) {
  e.set_dropout_counter(counter);
  const ps::LossResult r = e.forward_backward(b, 0.0f);
  return r.loss_sum / static_cast<double>(r.tokens);
}

// Gradients of the mean loss (fresh), keyed by name.
inline std::map<std::string, std::vector<float>> gradients(ps::Engine& e, const ps::Batch& b, uint64_t counter,
                                                           const std::vector<std::string>& names,
                                                           int64_t tokens) {
  e.zero_gradients();
  e.set_dropout_counter(counter);
  e.forward_backward(b, static_cast<float>(1.0 / static_cast<double>(tokens)));
  std::map<std::string, std::vector<float>> g;
  for (const auto& n : names) g[n] = e.get_gradient(n);
  return g;
}

struct Result {
  double fd = 0, analytic = 0;
  double scale = 0;  // |g| |u|: the largest |analytic| a direction of this length could give
};

// Directional derivative along u ~ N(0, 1) per element over all the named
// tensors, by central differences with steps h and h/2 combined by
// Richardson extrapolation (the O(h^2) truncation cancels, leaving O(h^4)).
// The analytic side uses the perturbation actually stored in fp32.
inline Result directional(ps::Engine& e, const ps::Batch& b, uint64_t counter,
                          const std::vector<std::string>& names,
                          const std::map<std::string, std::vector<float>>& grads, double h, uint64_t seed) {
  ps::Rng rng(seed);
  std::map<std::string, std::vector<float>> theta;
  std::map<std::string, std::vector<double>> u;
  double unorm = 0, gnorm = 0;
  for (const auto& n : names) {
    theta[n] = e.get_tensor(n);
    u[n].resize(theta[n].size());
    for (auto& x : u[n]) {
      x = rng.normal();
      unorm += x * x;
    }
    for (float g : grads.at(n)) gnorm += static_cast<double>(g) * g;
  }
  // X(step) = (L(+) - L(-)) / (2 step); Y(step) = g . (theta+ - theta-) / (2 step).
  auto measure = [&](double step, double* X, double* Y) {
    std::map<std::string, std::vector<float>> plus, minus;
    double y = 0;
    for (const auto& n : names) {
      plus[n] = minus[n] = theta[n];
      const auto& g = grads.at(n);
      for (size_t i = 0; i < theta[n].size(); ++i) {
        plus[n][i] = static_cast<float>(theta[n][i] + step * u[n][i]);
        minus[n][i] = static_cast<float>(theta[n][i] - step * u[n][i]);
        y += static_cast<double>(g[i]) * (static_cast<double>(plus[n][i]) - minus[n][i]);
      }
    }
    for (const auto& n : names) e.set_tensor(n, plus[n].data(), plus[n].size());
    const double lp = mean_loss(e, b, counter);
    for (const auto& n : names) e.set_tensor(n, minus[n].data(), minus[n].size());
    const double lm = mean_loss(e, b, counter);
    for (const auto& n : names) e.set_tensor(n, theta[n].data(), theta[n].size());
    *X = (lp - lm) / (2 * step);
    *Y = y / (2 * step);
  };
  double x1, y1, x2, y2;
  measure(h, &x1, &y1);
  measure(h / 2, &x2, &y2);
  Result r;
  r.fd = (4 * x2 - x1) / 3;
  r.analytic = (4 * y2 - y1) / 3;
  r.scale = std::sqrt(gnorm * unorm);
  return r;
}

// d loss / d theta[name][index]: central differences with steps h and h/2,
// Richardson-extrapolated.
inline double element(ps::Engine& e, const ps::Batch& b, uint64_t counter, const std::string& name, size_t index,
                      double h) {
  std::vector<float> t = e.get_tensor(name);
  const float orig = t[index];
  auto central = [&](double step) {
    const float p = static_cast<float>(orig + step), m = static_cast<float>(orig - step);
    t[index] = p;
    e.set_tensor(name, t.data(), t.size());
    const double lp = mean_loss(e, b, counter);
    t[index] = m;
    e.set_tensor(name, t.data(), t.size());
    const double lm = mean_loss(e, b, counter);
    t[index] = orig;
    e.set_tensor(name, t.data(), t.size());
    return (lp - lm) / (static_cast<double>(p) - m);
  };
  const double d1 = central(h), d2 = central(h / 2);
  return (4 * d2 - d1) / 3;
}

// The indices of the k largest |g| (where a wrong gradient shows most clearly).
inline std::vector<size_t> largest(const std::vector<float>& g, size_t k) {
  std::vector<size_t> idx(g.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](size_t a, size_t b) { return std::fabs(g[a]) > std::fabs(g[b]); });
  idx.resize(k);
  return idx;
}

}  // namespace fd
