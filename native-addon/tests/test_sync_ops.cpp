// The ops that keep a training step's per-tensor, per-chunk and per-row work
// on the backend (backend.h, section "syncs"), on the CPU backend:
//  - each against an independent float64 reference;
//  - each against the host formula the engine used before the op existed,
//    BIT FOR BIT (the CPU engine's results must not change);
//  - the same bits for 1, 2 and 3 threads, portable and AVX2 kernels;
//  - bad input: the errors the old paths gave.
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "methods/trainable.h"
#include "model/half.h"
#include "optimizer.h"
#include "rng.h"

namespace {

bool same_bits(const void* a, const void* b, size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

bool throws_containing(const std::function<void()>& f, const std::string& want) {
  try {
    f();
  } catch (const ps::Error& e) {
    if (std::string(e.what()).find(want) != std::string::npos) return true;
    std::printf("  error \"%s\" lacks \"%s\"\n", e.what(), want.c_str());
    return false;
  }
  return false;
}

std::vector<float> random_floats(size_t n, uint64_t seed, double scale) {
  ps::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal() * scale);
  return v;
}

// ---- sum_squares_many -------------------------------------------------------
// Sizes around the 8-lane and 16384-value block edges, empty tensors between.
void test_sum_squares_many() {
  const std::vector<size_t> sizes = {0, 1, 7, 8, 9, 100, 16383, 16384, 16385, 0, 40000, 32768, 3, 70001};
  std::vector<std::vector<float>> data;
  for (size_t i = 0; i < sizes.size(); ++i) data.push_back(random_floats(sizes[i], 100 + i, 1.0 + i));
  std::vector<const float*> xs;
  for (const auto& d : data) xs.push_back(d.data());
  std::vector<double> first;
  for (int threads : {1, 2, 3}) {
    for (bool portable : {false, true}) {
      ps::CpuBackend be(threads, portable);
      std::vector<double> got(sizes.size(), -1.0);
      be.sum_squares_many(xs.data(), sizes.data(), static_cast<int>(sizes.size()), got.data());
      for (size_t i = 0; i < sizes.size(); ++i) {
        // The single-tensor op, bit for bit.
        const double one = be.sum_squares(xs[i], sizes[i]);
        if (!same_bits(&got[i], &one, sizeof(double)))
          pstest::fail(__FILE__, __LINE__,
                       "sum_squares_many[" + std::to_string(i) + "] (n=" + std::to_string(sizes[i]) +
                           ") != sum_squares: " + std::to_string(got[i]) + " vs " + std::to_string(one));
        // An independent reference: long double, sequential.
        long double ref = 0;
        for (float x : data[i]) ref += static_cast<long double>(x) * x;
        CHECK_CLOSE(got[i], static_cast<double>(ref), 1e-13, 0.0);
      }
      if (first.empty()) first = got;
      CHECK(same_bits(first.data(), got.data(), got.size() * sizeof(double)));  // any thread count
    }
  }
  ps::CpuBackend be(2);
  be.sum_squares_many(nullptr, nullptr, 0, nullptr);  // nothing to do, nothing touched
  double out = 1.0;
  CHECK(throws_containing([&] { be.sum_squares_many(xs.data(), sizes.data(), -1, &out); }, "count must be >= 0"));
}

// global_grad_norm against the loop it replaced: sum += sum_squares per
// tensor, in list order, then sqrt.
void test_global_grad_norm() {
  ps::CpuBackend be(2);
  std::vector<std::vector<float>> grads;
  std::vector<ps::TrainableTensor> params;
  for (size_t i = 0; i < 60; ++i) grads.push_back(random_floats(1 + (i * 7919) % 20000, 300 + i, 0.01 * (1 + i % 5)));
  for (size_t i = 0; i < grads.size(); ++i) {
    ps::TrainableTensor t;
    t.name = "t" + std::to_string(i);
    t.numel = grads[i].size();
    t.grad = grads[i].data();
    t.value = grads[i].data();
    params.push_back(t);
  }
  double old_sum = 0;
  for (const auto& t : params) old_sum += be.sum_squares(t.grad, t.numel);
  const double old_norm = std::sqrt(old_sum);
  const double norm = ps::global_grad_norm(be, params);
  CHECK(same_bits(&norm, &old_norm, sizeof(double)));
  long double ref = 0;
  for (const auto& g : grads)
    for (float x : g) ref += static_cast<long double>(x) * x;
  CHECK_CLOSE(norm, std::sqrt(static_cast<double>(ref)), 1e-13, 0.0);
}

// ---- cross_entropy_rows -------------------------------------------------------
double reference_row_loss(const float* x, int V, int target) {
  double m = -INFINITY;
  for (int j = 0; j < V; ++j) m = std::max(m, static_cast<double>(x[j]));
  double s = 0;
  for (int j = 0; j < V; ++j) s += std::exp(static_cast<double>(x[j]) - m);
  return std::log(s) + m - x[target];
}

void test_cross_entropy_rows() {
  for (int V : {5, 1024, 2500}) {  // one partial chunk, one exact chunk, three chunks of 1024
    const int rows = 37;
    const std::vector<float> logits = random_floats(static_cast<size_t>(rows) * V, 7 + V, 3.0);
    std::vector<int32_t> targets(rows);
    ps::Rng rng(11 + V);
    for (int r = 0; r < rows; ++r) targets[r] = r % 6 == 4 ? -100 : static_cast<int32_t>(rng.next_u64() % V);
    for (int threads : {1, 2, 3}) {
      for (bool portable : {false, true}) {
        ps::CpuBackend be(threads, portable);
        const float grad_scale = 0.125f;
        std::vector<double> loss(rows, -1.0);
        std::vector<float> d(logits.size(), 7.0f);
        be.cross_entropy_rows(logits.data(), targets.data(), rows, V, grad_scale, d.data(), loss.data());
        double ref_sum = 0.0;
        int ref_count = 0;
        for (int r = 0; r < rows; ++r) {
          const float* x = logits.data() + static_cast<size_t>(r) * V;
          const float* dr = d.data() + static_cast<size_t>(r) * V;
          if (targets[r] == -100) {
            CHECK(loss[r] == 0.0);
            for (int j = 0; j < V; ++j) CHECK(dr[j] == 0.0f);
            continue;
          }
          const double want = reference_row_loss(x, V, targets[r]);
          CHECK_CLOSE(loss[r], want, 1e-5, 1e-6);
          ref_sum += want;
          ++ref_count;
          // dlogits = grad_scale * (softmax - onehot), from the float64 loss's log-sum-exp.
          const double lse = want + x[targets[r]];
          for (int j = 0; j < V; j += 1 + j / 7)
            CHECK_CLOSE(dr[j], grad_scale * (std::exp(x[j] - lse) - (j == targets[r] ? 1.0 : 0.0)), 1e-5, 1e-7);
        }
        // cross_entropy (the summed op for op-level callers) is these rows added in order.
        int count = 0;
        std::vector<float> sum_d(logits.size());
        const double sum = be.cross_entropy(logits.data(), targets.data(), rows, V, grad_scale, sum_d.data(), &count);
        CHECK(count == ref_count);
        CHECK_CLOSE(sum, ref_sum, 1e-6, 0.0);
        CHECK(same_bits(sum_d.data(), d.data(), d.size() * sizeof(float)));
        // Without dlogits, and in place (dlogits aliasing logits): the same losses.
        std::vector<double> loss2(rows, -1.0);
        be.cross_entropy_rows(logits.data(), targets.data(), rows, V, grad_scale, nullptr, loss2.data());
        CHECK(same_bits(loss2.data(), loss.data(), rows * sizeof(double)));
        std::vector<float> inplace = logits;
        be.cross_entropy_rows(inplace.data(), targets.data(), rows, V, grad_scale, inplace.data(), loss2.data());
        CHECK(same_bits(loss2.data(), loss.data(), rows * sizeof(double)));
        CHECK(same_bits(inplace.data(), d.data(), d.size() * sizeof(float)));
      }
    }
    // Bad targets: cross_entropy's message, nothing written.
    ps::CpuBackend be(2);
    std::vector<double> loss(rows, -1.0);
    for (int32_t bad : {-1, V, -101}) {
      std::vector<int32_t> t = targets;
      t[rows - 1] = bad;
      CHECK(throws_containing(
          [&] { be.cross_entropy_rows(logits.data(), t.data(), rows, V, 1.0f, nullptr, loss.data()); },
          "target " + std::to_string(bad) + " at row " + std::to_string(rows - 1) + " is outside the vocabulary"));
      CHECK(loss[0] == -1.0);
    }
  }
}

// ---- tanh ---------------------------------------------------------------------
void test_tanh() {
  std::vector<float> x = random_floats(70001, 21, 2.5);
  x[0] = 0.0f;
  x[1] = -0.0f;
  x[2] = 30.0f;
  x[3] = -30.0f;
  x[4] = 1e-8f;
  // The former host code of prefix_tuning.cpp.
  std::vector<float> old_y = x;
  for (auto& v : old_y) v = std::tanh(v);
  const std::vector<float> g = random_floats(x.size(), 22, 1.0);
  std::vector<float> old_dx = g;
  for (size_t i = 0; i < x.size(); ++i) old_dx[i] *= 1.0f - old_y[i] * old_y[i];

  for (int threads : {1, 2, 3}) {
    ps::CpuBackend be(threads);
    std::vector<float> y = x;
    be.tanh_forward(y.data(), y.size());
    CHECK(same_bits(y.data(), old_y.data(), y.size() * sizeof(float)));
    std::vector<float> dx = g;
    be.tanh_backward(y.data(), dx.data(), dx.size());
    CHECK(same_bits(dx.data(), old_dx.data(), dx.size() * sizeof(float)));
    if (threads == 1) {
      // float64 references: tanh within a few float ulps, and the derivative
      // 1 - tanh^2 against a central difference of tanh.
      for (size_t i = 0; i < x.size(); ++i) {
        const double t = std::tanh(static_cast<double>(x[i]));
        CHECK_CLOSE(y[i], t, 4e-7, 1e-30);
        // 1 - y*y in float cancels where |y| ~ 1: y's rounding (2^-24
        // relative) becomes an absolute error of about 2^-23 in 1 - y^2.
        CHECK_CLOSE(dx[i], g[i] * (1.0 - t * t), 1e-6, 3e-7 * std::fabs(g[i]) + 1e-30);
      }
      for (double at : {-2.0, -0.3, 0.0, 0.7, 1.9}) {
        const double h = 1e-5, fd = (std::tanh(at + h) - std::tanh(at - h)) / (2 * h);
        float yf = static_cast<float>(at), d1 = 1.0f;
        be.tanh_forward(&yf, 1);
        be.tanh_backward(&yf, &d1, 1);
        CHECK_CLOSE(d1, fd, 1e-6, 1e-7);
      }
    }
  }
  ps::CpuBackend be(1);
  be.tanh_forward(nullptr, 0);
  be.tanh_backward(nullptr, nullptr, 0);
}

// ---- embedding_forward_half ---------------------------------------------------
// An IEEE half decoded from its fields in double arithmetic (independent of model/half.h).
double reference_f16(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double sign = s ? -1.0 : 1.0;
  if (e == 0x1F) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m / 1024.0, -14);
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}
double reference_bf16(uint16_t h) {
  const int s = h >> 15, e = (h >> 7) & 0xFF, m = h & 0x7F;
  const double sign = s ? -1.0 : 1.0;
  if (e == 0xFF) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m / 128.0, -126);
  return sign * std::ldexp(1.0 + m / 128.0, e - 127);
}

void test_embedding_forward_half() {
  // Every 16-bit pattern is one table entry: 65536 values as [1024, 64].
  const int D = 64, table_rows = 1024;
  std::vector<uint16_t> table(static_cast<size_t>(table_rows) * D);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<uint16_t>(i);
  const int rows = 3000;  // repeats, in a scrambled order
  std::vector<int32_t> ids(rows);
  ps::Rng rng(5);
  for (int r = 0; r < rows; ++r) ids[r] = static_cast<int32_t>(r < table_rows ? (r * 389) % table_rows : rng.next_u64() % table_rows);
  for (bool bf16 : {false, true}) {
    ps::CpuBackend one(1);
    // The former engine path: half_to_float per row, picked by the id.
    std::vector<float> old_out(static_cast<size_t>(rows) * D);
    for (int r = 0; r < rows; ++r)
      one.half_to_float(table.data() + static_cast<size_t>(ids[r]) * D, bf16, old_out.data() + static_cast<size_t>(r) * D, D);
    for (int threads : {1, 2, 3}) {
      ps::CpuBackend be(threads);
      std::vector<float> out(old_out.size(), 7.0f);
      be.embedding_forward_half(ids.data(), rows, table.data(), bf16, table_rows, D, out.data());
      CHECK(same_bits(out.data(), old_out.data(), out.size() * sizeof(float)));
    }
    size_t bad = 0;
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < D; ++c) {
        const uint16_t h = table[static_cast<size_t>(ids[r]) * D + c];
        const double want = bf16 ? reference_bf16(h) : reference_f16(h);
        const float got = old_out[static_cast<size_t>(r) * D + c];
        const bool ok = std::isnan(want) ? std::isnan(got) : static_cast<double>(got) == want &&
                                                                  std::signbit(got) == std::signbit(want);
        bad += ok ? 0 : 1;
      }
    if (bad) pstest::fail(__FILE__, __LINE__, std::to_string(bad) + " widened values differ from the reference");
  }
  ps::CpuBackend be(2);
  std::vector<float> out(static_cast<size_t>(rows) * D);
  for (int32_t id : {-1, table_rows, table_rows + 5}) {
    std::vector<int32_t> b = ids;
    b[17] = id;
    CHECK(throws_containing(
        [&] { be.embedding_forward_half(b.data(), rows, table.data(), true, table_rows, D, out.data()); },
        "embedding_forward_half: token id " + std::to_string(id) + " at row 17 is outside the table [0, 1024)"));
  }
  be.embedding_forward_half(ids.data(), 0, table.data(), true, table_rows, D, nullptr);  // no rows: nothing read
}

}  // namespace

int main() {
  try {
    test_sum_squares_many();
    test_global_grad_norm();
    test_cross_entropy_rows();
    test_tanh();
    test_embedding_forward_half();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_sync_ops");
}
