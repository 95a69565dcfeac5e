// The CPU backend's non-GEMM ops (attention has test_attention.cpp) against
// float64 references written here with plain loops from the contract in
// backend.h, and every backward against central finite differences of
// L = sum(G * out) through the op's own fp32 forward.
//
// Each op runs on the portable kernels with 1 and 2 threads and, when the CPU
// has them, the AVX2 kernels. Backward ops must ADD to pre-filled gradients
// and accept nullptr for gradients that are not wanted; ops that promise
// thread-count independent results are compared bit for bit across 1 and 2
// threads.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/vec_math.h"
#include "check.h"
#include "op_test_util.h"

using optest::Rand;
using optest::expect_close;
using optest::same_bits;
using optest::throws_error;
using ps::CpuBackend;

namespace {

struct Kernel {
  std::string name;
  std::unique_ptr<CpuBackend> be;
};

std::vector<Kernel> kernels() {
  std::vector<Kernel> k;
  k.push_back({"portable/1t", std::make_unique<CpuBackend>(1, true)});
  k.push_back({"portable/2t", std::make_unique<CpuBackend>(2, true)});
  auto avx = std::make_unique<CpuBackend>(2, false);
  if (avx->use_avx2()) k.push_back({"avx2/2t", std::move(avx)});
  return k;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// ---- the exp behind softmax, SiLU and cross-entropy --------------------------------

void test_vector_exp() {
  double worst = 0;
  for (double xd = -87.3; xd < 88.3; xd += 1.7e-3) {
    const float x = static_cast<float>(xd);
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(ps::vm_exp(x) - want) / want);
  }
  CHECK(worst < 2e-7);  // 2 ulp
  for (float x : {88.5f, 88.72f}) CHECK_CLOSE(ps::vm_exp(x), std::exp(static_cast<double>(x)), 1e-6, 0.0);
  CHECK(ps::vm_exp(0.0f) == 1.0f);
  CHECK(ps::vm_exp(-INFINITY) == 0.0f);  // masked scores must vanish exactly
  CHECK(ps::vm_exp(-100.0f) == 0.0f);
  CHECK(ps::vm_exp(200.0f) > 3e38f && std::isfinite(ps::vm_exp(200.0f)));
  CHECK(std::isnan(ps::vm_exp(NAN)));
}

// ---- add, add_bias, bias_backward --------------------------------------------

void test_add_and_bias() {
  Rand r(1);
  const size_t n = 100003;  // above the parallel threshold, odd
  const auto x = optest::random_vec(n, r), y0 = optest::random_vec(n, r);
  const int rows = 1000, N = 97;
  const auto b = optest::random_vec(N, r), m0 = optest::random_vec(static_cast<size_t>(rows) * N, r);
  const auto dy = optest::random_vec(static_cast<size_t>(rows) * N, r), db0 = optest::random_vec(N, r);
  std::vector<double> db_ref(N);
  for (int c = 0; c < N; ++c) {
    double s = 0;
    for (int i = 0; i < rows; ++i) s += dy[static_cast<size_t>(i) * N + c];
    db_ref[c] = db0[c] + s;
  }
  std::vector<float> db_first;
  for (auto& k : kernels()) {
    auto y = y0;
    k.be->add(y.data(), x.data(), n);
    bool exact = true;
    for (size_t i = 0; i < n; ++i) exact &= y[i] == y0[i] + x[i];
    CHECK(exact);

    auto m = m0;
    k.be->add_bias(m.data(), b.data(), rows, N);
    exact = true;
    for (int i = 0; i < rows; ++i)
      for (int c = 0; c < N; ++c) exact &= m[static_cast<size_t>(i) * N + c] == m0[static_cast<size_t>(i) * N + c] + b[c];
    CHECK(exact);

    k.be->bias_backward(dy.data(), rows, N, nullptr);  // frozen bias: nothing to do
    auto db = db0;
    k.be->bias_backward(dy.data(), rows, N, db.data());
    expect_close(k.name + " bias_backward", db, db_ref, 1e-6, 1e-6);
    if (db_first.empty()) db_first = db;
    CHECK(same_bits(db, db_first));  // columns are owned: any thread count, same bits
  }

  // bias_backward is the gradient of add_bias: finite differences of sum(G * (y + b)).
  CpuBackend be(2);
  const int fr = 5, fn = 7;
  auto fb = optest::random_vec(fn, r);
  const auto fy = optest::random_vec(static_cast<size_t>(fr) * fn, r), G = optest::random_vec(fy.size(), r);
  std::vector<float> out;
  auto loss = [&]() {
    out = fy;
    be.add_bias(out.data(), fb.data(), fr, fn);
    return optest::weighted_sum(G, out.data());
  };
  std::vector<float> grad(fn, 0.0f);
  be.bias_backward(G.data(), fr, fn, grad.data());
  Rand pr(2);
  optest::expect_fd("add_bias fd", fb, grad, fn, 1e-2f, 1e-4, 1e-5, pr, loss);
}

// ---- dropout -----------------------------------------------------------------

// The mask as specified in dropout_mask.h, transcribed independently:
// splitmix64's mixer spreads the key into two words, then two keyed rounds of
// murmur3's 32-bit finalizer over the element index; top 24 bits / 2^24.
uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  return h ^ (h >> 16);
}
std::vector<bool> expected_mask(uint64_t key, size_t n, float p) {
  uint64_t z = key;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const uint32_t k0 = static_cast<uint32_t>(z), k1 = static_cast<uint32_t>(z >> 32);
  std::vector<bool> keep(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t h = fmix32(fmix32(static_cast<uint32_t>(i) ^ k0) ^ k1 ^ static_cast<uint32_t>(static_cast<uint64_t>(i) >> 32));
    keep[i] = static_cast<double>(h >> 8) / 16777216.0 >= p;
  }
  return keep;
}

void test_dropout() {
  Rand r(3);
  const size_t n = 100001;
  const float p = 0.3f;
  const uint64_t key = 0x1234ABCDull;
  const auto x = optest::random_vec(n, r, 0.5f, 1.5f);  // never 0, so zeros mean "dropped"
  const std::vector<bool> keep = expected_mask(key, n, p);
  const float scale = 1.0f / (1.0f - p);
  std::vector<float> y_first;
  for (auto& k : kernels()) {
    std::vector<float> y(n, -7.0f);
    k.be->dropout_forward(x.data(), y.data(), n, p, key);
    size_t kept = 0, wrong = 0;
    for (size_t i = 0; i < n; ++i) {
      const float want = keep[i] ? x[i] * scale : 0.0f;
      wrong += y[i] != want;
      kept += y[i] != 0.0f;
    }
    CHECK(wrong == 0);
    // keep rate 1 - p within 5 standard deviations
    const double rate = static_cast<double>(kept) / n;
    CHECK(std::fabs(rate - (1.0 - p)) < 5.0 * std::sqrt(p * (1.0 - p) / n));
    if (y_first.empty()) y_first = y;
    CHECK(same_bits(y, y_first));  // independent of thread count and kernels

    // Backward: dx += the same mask applied to dy.
    // Dropped elements keep dx exactly; kept ones add dy / (1-p) (to an ulp:
    // the AVX2 build may fuse the multiply-add).
    const auto dy = optest::random_vec(n, r, 0.5f, 1.5f), dx0 = optest::random_vec(n, r);
    auto dx = dx0;
    k.be->dropout_backward(dy.data(), dx.data(), n, p, key);
    wrong = 0;
    for (size_t i = 0; i < n; ++i) {
      const double want = static_cast<double>(dx0[i]) + (keep[i] ? static_cast<double>(dy[i]) * scale : 0.0);
      wrong += keep[i] ? !pstest::close(dx[i], want, 2e-7, 2e-7) : dx[i] != dx0[i];
    }
    CHECK(wrong == 0);

    // Neighbours are independent: P(both kept) = (1-p)^2.
    size_t both = 0;
    for (size_t i = 0; i + 1 < n; ++i) both += (y[i] != 0.0f) && (y[i + 1] != 0.0f);
    CHECK(std::fabs(static_cast<double>(both) / (n - 1) - (1 - p) * (1 - p)) < 0.01);

    // Another key: a different, uncorrelated mask (agreement ~ p^2 + (1-p)^2).
    std::vector<float> y2(n);
    k.be->dropout_forward(x.data(), y2.data(), n, p, key + 1);
    size_t agree = 0;
    for (size_t i = 0; i < n; ++i) agree += (y2[i] != 0.0f) == (y[i] != 0.0f);
    const double expect_agree = p * p + (1 - p) * (1 - p);
    CHECK(std::fabs(static_cast<double>(agree) / n - expect_agree) < 0.01);

    // p = 0 keeps everything unchanged, p = 1 drops everything.
    k.be->dropout_forward(x.data(), y2.data(), n, 0.0f, key);
    CHECK(same_bits(y2, x));
    k.be->dropout_forward(x.data(), y2.data(), n, 1.0f, key);
    bool zeros = true;
    for (float v : y2) zeros &= v == 0.0f;
    CHECK(zeros);
    CHECK(throws_error([&] { k.be->dropout_forward(x.data(), y2.data(), n, 1.5f, key); }));
    CHECK(throws_error([&] { k.be->dropout_forward(x.data(), y2.data(), n, NAN, key); }));
  }
}

// ---- embedding -----------------------------------------------------------------

void test_embedding() {
  Rand r(4);
  for (int D : {13, 1000}) {  // 1000: wide enough for the column split to use both threads
    const int V = 11, rows = 40;
    std::vector<int32_t> ids(rows);
    for (auto& id : ids) id = r.integer(0, V - 1);
    ids[3] = ids[7] = ids[20] = 4;  // repeated ids add up
    const auto table = optest::random_vec(static_cast<size_t>(V) * D, r);
    const auto dout = optest::random_vec(static_cast<size_t>(rows) * D, r);
    const auto dt0 = optest::random_vec(table.size(), r);
    std::vector<double> dt_ref = to_double(dt0);
    for (int i = 0; i < rows; ++i)
      for (int d = 0; d < D; ++d) dt_ref[static_cast<size_t>(ids[i]) * D + d] += dout[static_cast<size_t>(i) * D + d];
    std::vector<float> dt_first;
    for (auto& k : kernels()) {
      std::vector<float> out(static_cast<size_t>(rows) * D, -1.0f);
      k.be->embedding_forward(ids.data(), rows, table.data(), D, out.data());
      bool exact = true;
      for (int i = 0; i < rows; ++i)
        for (int d = 0; d < D; ++d) exact &= out[static_cast<size_t>(i) * D + d] == table[static_cast<size_t>(ids[i]) * D + d];
      CHECK(exact);
      k.be->embedding_backward(ids.data(), rows, dout.data(), D, nullptr);  // frozen table
      auto dt = dt0;
      k.be->embedding_backward(ids.data(), rows, dout.data(), D, dt.data());
      expect_close(k.name + " embedding_backward D=" + std::to_string(D), dt, dt_ref, 1e-6, 1e-6);
      if (dt_first.empty()) dt_first = dt;
      CHECK(same_bits(dt, dt_first));
      std::vector<int32_t> bad = ids;
      bad[5] = -3;
      CHECK(throws_error([&] { k.be->embedding_forward(bad.data(), rows, table.data(), D, out.data()); }));
    }
  }
  // Finite differences of sum(G * table[ids]).
  CpuBackend be(2);
  const int V = 5, D = 6, rows = 9;
  std::vector<int32_t> ids = {0, 3, 3, 1, 4, 3, 0, 2, 1};
  auto table = optest::random_vec(static_cast<size_t>(V) * D, r);
  const auto G = optest::random_vec(static_cast<size_t>(rows) * D, r);
  std::vector<float> out(G.size()), grad(table.size(), 0.0f);
  auto loss = [&]() {
    be.embedding_forward(ids.data(), rows, table.data(), D, out.data());
    return optest::weighted_sum(G, out.data());
  };
  be.embedding_backward(ids.data(), rows, G.data(), D, grad.data());
  Rand pr(5);
  optest::expect_fd("embedding fd", table, grad, 12, 1e-2f, 1e-4, 1e-5, pr, loss);
}

// ---- RMSNorm ---------------------------------------------------------------------

struct NormRef {
  std::vector<double> y, rstd, dx, dw;
};

// Plain float64 RMSNorm and its backward, from the definition.
NormRef rmsnorm_ref(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dy,
                    int rows, int D, double eps) {
  NormRef r;
  r.y.resize(x.size());
  r.dx.resize(x.size());
  r.rstd.resize(rows);
  r.dw.assign(D, 0.0);
  for (int i = 0; i < rows; ++i) {
    const float* xr = &x[static_cast<size_t>(i) * D];
    const float* g = &dy[static_cast<size_t>(i) * D];
    double ms = 0;
    for (int j = 0; j < D; ++j) ms += static_cast<double>(xr[j]) * xr[j];
    ms /= D;
    const double rs = 1.0 / std::sqrt(ms + eps);
    r.rstd[i] = rs;
    // dL/dx_k = rs w_k g_k - x_k rs^3 / D * sum_j w_j g_j x_j
    double dot = 0;
    for (int j = 0; j < D; ++j) dot += static_cast<double>(w[j]) * g[j] * xr[j];
    for (int j = 0; j < D; ++j) {
      r.y[static_cast<size_t>(i) * D + j] = w[j] * xr[j] * rs;
      r.dx[static_cast<size_t>(i) * D + j] = rs * w[j] * g[j] - xr[j] * rs * rs * rs * dot / D;
      r.dw[j] += static_cast<double>(g[j]) * xr[j] * rs;
    }
  }
  return r;
}

void test_rmsnorm() {
  Rand r(6);
  const float eps = 1e-5f;
  for (auto [rows, D] : {std::pair<int, int>{7, 37}, {300, 128}}) {
    auto x = optest::random_vec(static_cast<size_t>(rows) * D, r);
    // Rows of very different scale, and an all-zero row (rstd = 1/sqrt(eps)).
    for (int j = 0; j < D; ++j) {
      x[0 * D + j] *= 1e-3f;
      x[1 * D + j] *= 100.0f;
      x[2 * D + j] = 0.0f;
    }
    const auto w = optest::random_vec(D, r, 0.5f, 1.5f);
    const auto dy = optest::random_vec(x.size(), r);
    const auto dx0 = optest::random_vec(x.size(), r), dw0 = optest::random_vec(D, r);
    const NormRef ref = rmsnorm_ref(x, w, dy, rows, D, eps);
    std::vector<double> dx_want(x.size()), dw_want(D);
    for (size_t i = 0; i < x.size(); ++i) dx_want[i] = dx0[i] + ref.dx[i];
    for (int j = 0; j < D; ++j) dw_want[j] = dw0[j] + ref.dw[j];
    std::vector<float> dx_first, dw_first;
    for (auto& k : kernels()) {
      const std::string tag = k.name + " rmsnorm " + std::to_string(rows) + "x" + std::to_string(D);
      std::vector<float> y(x.size()), rstd(rows);
      k.be->rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), rows, D, eps);
      expect_close(tag + " y", y, ref.y, 3e-6, 1e-7);
      expect_close(tag + " rstd", rstd, ref.rstd, 2e-6, 0.0);
      auto dx = dx0, dw = dw0;
      k.be->rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), rows, D, dx.data(), dw.data());
      // Relative to the size of the terms that cancel in dx (|rs w g| ~ rs).
      for (int i = 0; i < rows; ++i)
        expect_close(tag + " dx row " + std::to_string(i), dx.data() + static_cast<size_t>(i) * D,
                     dx_want.data() + static_cast<size_t>(i) * D, D, 1e-5, 1e-6 * ref.rstd[i]);
      expect_close(tag + " dw", dw, dw_want, 1e-5, 1e-5);
      if (dx_first.empty()) dx_first = dx, dw_first = dw;
      if (k.name.rfind("portable", 0) == 0) {  // rows and columns are owned: same bits for 1 and 2 threads
        CHECK(same_bits(dx, dx_first));
        CHECK(same_bits(dw, dw_first));
      }
      // nullptr gradients leave the other one exactly as before.
      auto dx_only = dx0, dw_only = dw0;
      k.be->rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), rows, D, dx_only.data(), nullptr);
      k.be->rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), rows, D, nullptr, dw_only.data());
      CHECK(same_bits(dx_only, dx));
      CHECK(same_bits(dw_only, dw));
    }
  }
  // Finite differences on rows of ordinary scale.
  CpuBackend be(2);
  const int rows = 4, D = 9;
  auto x = optest::random_vec(static_cast<size_t>(rows) * D, r);
  auto w = optest::random_vec(D, r, 0.5f, 1.5f);
  const auto G = optest::random_vec(x.size(), r);
  std::vector<float> y(x.size()), rstd(rows), dx(x.size(), 0.0f), dw(D, 0.0f);
  auto loss = [&]() {
    be.rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), rows, D, eps);
    return optest::weighted_sum(G, y.data());
  };
  loss();
  be.rmsnorm_backward(G.data(), x.data(), w.data(), rstd.data(), rows, D, dx.data(), dw.data());
  Rand pr(7);
  optest::expect_fd("rmsnorm fd dx", x, dx, 16, 1e-2f, 2e-3, 1e-4, pr, loss);
  optest::expect_fd("rmsnorm fd dw", w, dw, 9, 1e-2f, 2e-3, 1e-4, pr, loss);
}

// ---- RoPE -----------------------------------------------------------------------

void test_rope() {
  Rand r(8);
  const int max_pos = 64, D = 10, half = D / 2, H = 3, rows = 7;
  const std::vector<int32_t> pos = {5, 0, 63, 17, 17, 2, 40};  // not 0..rows-1, repeats
  std::vector<float> cos(static_cast<size_t>(max_pos) * half), sin(cos.size());
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const double angle = p * std::pow(10000.0, -2.0 * i / D);
      cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(angle));
      sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(angle));
    }
  const auto x = optest::random_vec(static_cast<size_t>(rows) * H * D, r);
  const auto g = optest::random_vec(x.size(), r);
  // HF: out = x * cos_full + rotate_half(x) * sin_full, rotate_half(x) = [-x2, x1],
  // cos_full = [cos, cos]; backward is the transposed map.
  std::vector<double> fwd(x.size()), bwd(x.size());
  for (int i = 0; i < rows; ++i)
    for (int h = 0; h < H; ++h) {
      const size_t base = (static_cast<size_t>(i) * H + h) * D;
      for (int d = 0; d < D; ++d) {
        const double c = cos[static_cast<size_t>(pos[i]) * half + d % half];
        const double s = sin[static_cast<size_t>(pos[i]) * half + d % half];
        const double rot = d < half ? -static_cast<double>(x[base + d + half]) : x[base + d - half];
        fwd[base + d] = x[base + d] * c + rot * s;
        // (R^T g)_d: g_d c + (d < half ? g_(d+half) s : -g_(d-half) s)
        const double rot_t = d < half ? static_cast<double>(g[base + d + half]) : -static_cast<double>(g[base + d - half]);
        bwd[base + d] = g[base + d] * c + rot_t * s;
      }
    }
  for (auto& k : kernels()) {
    auto y = x;
    k.be->rope_forward(y.data(), pos.data(), rows, H, D, cos.data(), sin.data());
    expect_close(k.name + " rope_forward", y, fwd, 1e-6, 1e-6);
    auto dg = g;
    k.be->rope_backward(dg.data(), pos.data(), rows, H, D, cos.data(), sin.data());
    expect_close(k.name + " rope_backward", dg, bwd, 1e-6, 1e-6);
    // A rotation: backward(forward(x)) = x.
    k.be->rope_backward(y.data(), pos.data(), rows, H, D, cos.data(), sin.data());
    expect_close(k.name + " rope round trip", y, to_double(x), 1e-5, 1e-6);
    std::vector<int32_t> bad = pos;
    bad[2] = -1;
    CHECK(throws_error([&] { k.be->rope_forward(y.data(), bad.data(), rows, H, D, cos.data(), sin.data()); }));
    CHECK(throws_error([&] { k.be->rope_forward(y.data(), pos.data(), rows, H, 9, cos.data(), sin.data()); }));
  }
  CpuBackend be(2);
  auto xv = x;
  std::vector<float> y;
  auto loss = [&]() {
    y = xv;
    be.rope_forward(y.data(), pos.data(), rows, H, D, cos.data(), sin.data());
    return optest::weighted_sum(g, y.data());
  };
  auto grad = g;
  be.rope_backward(grad.data(), pos.data(), rows, H, D, cos.data(), sin.data());
  Rand pr(9);
  optest::expect_fd("rope fd", xv, grad, 20, 1e-2f, 1e-4, 1e-5, pr, loss);
}

// ---- SwiGLU -----------------------------------------------------------------------

void test_swiglu() {
  Rand r(10);
  const size_t n = 40001;
  auto gate = optest::random_vec(n, r, -12.0f, 12.0f);
  const auto up = optest::random_vec(n, r, -2.0f, 2.0f);
  const float extremes[] = {-100.0f, 100.0f, -88.9f, 88.9f, 0.0f, -0.0f, -20.0f, 20.0f};
  for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; ++i) gate[i * 997] = extremes[i];
  const auto dout = optest::random_vec(n, r);
  const auto dg0 = optest::random_vec(n, r), du0 = optest::random_vec(n, r);
  std::vector<double> out_ref(n), dg_ref(n), du_ref(n);
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i], s = 1.0 / (1.0 + std::exp(-g));
    out_ref[i] = g * s * up[i];
    dg_ref[i] = dg0[i] + dout[i] * up[i] * s * (1.0 + g * (1.0 - s));
    du_ref[i] = du0[i] + dout[i] * g * s;
  }
  for (auto& k : kernels()) {
    std::vector<float> out(n);
    k.be->swiglu_forward(gate.data(), up.data(), out.data(), n);
    expect_close(k.name + " swiglu_forward", out, out_ref, 4e-6, 1e-30);
    auto dg = dg0, du = du0;
    k.be->swiglu_backward(gate.data(), up.data(), dout.data(), dg.data(), du.data(), n);
    expect_close(k.name + " swiglu dgate", dg, dg_ref, 4e-6, 1e-6);
    expect_close(k.name + " swiglu dup", du, du_ref, 4e-6, 1e-6);
    auto dg_only = dg0, du_only = du0;
    k.be->swiglu_backward(gate.data(), up.data(), dout.data(), dg_only.data(), nullptr, n);
    k.be->swiglu_backward(gate.data(), up.data(), dout.data(), nullptr, du_only.data(), n);
    CHECK(same_bits(dg_only, dg));
    CHECK(same_bits(du_only, du));
  }
  CpuBackend be(2);
  const size_t m = 64;
  auto g = optest::random_vec(m, r, -6.0f, 6.0f), u = optest::random_vec(m, r, -2.0f, 2.0f);
  const auto G = optest::random_vec(m, r);
  std::vector<float> out(m), dg(m, 0.0f), du(m, 0.0f);
  auto loss = [&]() {
    be.swiglu_forward(g.data(), u.data(), out.data(), m);
    return optest::weighted_sum(G, out.data());
  };
  be.swiglu_backward(g.data(), u.data(), G.data(), dg.data(), du.data(), m);
  Rand pr(11);
  optest::expect_fd("swiglu fd dgate", g, dg, 16, 1e-2f, 2e-3, 1e-4, pr, loss);
  optest::expect_fd("swiglu fd dup", u, du, 16, 1e-2f, 2e-3, 1e-4, pr, loss);
}

// ---- cross-entropy -------------------------------------------------------------------

struct CeRef {
  double sum = 0;
  int count = 0;
  std::vector<double> grad;
};

CeRef cross_entropy_ref(const std::vector<float>& logits, const std::vector<int32_t>& t, int rows, int V,
                        double grad_scale) {
  CeRef r;
  r.grad.assign(logits.size(), 0.0);
  for (int i = 0; i < rows; ++i) {
    if (t[i] == -100) continue;
    const float* x = &logits[static_cast<size_t>(i) * V];
    double m = -INFINITY;
    for (int j = 0; j < V; ++j) m = std::max(m, static_cast<double>(x[j]));
    double s = 0;
    for (int j = 0; j < V; ++j) s += std::exp(x[j] - m);
    r.sum += m + std::log(s) - x[t[i]];
    ++r.count;
    for (int j = 0; j < V; ++j)
      r.grad[static_cast<size_t>(i) * V + j] = grad_scale * (std::exp(x[j] - m) / s - (j == t[i] ? 1.0 : 0.0));
  }
  return r;
}

void test_cross_entropy() {
  Rand r(12);
  struct Shape {
    int rows, V;
  };
  for (Shape sh : {Shape{6, 1031}, Shape{5, 3000}, Shape{2, 152064}}) {
    const int rows = sh.rows, V = sh.V;
    auto logits = optest::random_vec(static_cast<size_t>(rows) * V, r, -5.0f, 5.0f);
    std::vector<int32_t> t(rows);
    for (auto& v : t) v = r.integer(0, V - 1);
    t[1] = -100;                                                       // ignored row
    for (int j = 0; j < V; ++j) logits[static_cast<size_t>(0) * V + j] += 1000.0f;  // needs the max shift
    if (V > 2048 && rows >= 4) {
      // Max in a late chunk; a first chunk of -inf (masked vocabulary).
      logits[static_cast<size_t>(2) * V + V - 3] = 40.0f;
      for (int j = 0; j < 1024; ++j) logits[static_cast<size_t>(3) * V + j] = -INFINITY;
      if (t[3] < 1024) t[3] = 1500;
    }
    const float grad_scale = 0.25f;
    const CeRef ref = cross_entropy_ref(logits, t, rows, V, grad_scale);
    const std::string shape = std::to_string(rows) + "x" + std::to_string(V);
    std::vector<float> g_first;
    for (auto& k : kernels()) {
      const std::string tag = k.name + " cross_entropy " + shape;
      std::vector<float> d(logits.size(), 99.0f);  // overwritten, ignored rows included
      int count = -1;
      const double sum = k.be->cross_entropy(logits.data(), t.data(), rows, V, grad_scale, d.data(), &count);
      CHECK(count == ref.count);
      CHECK_CLOSE(sum, ref.sum, 1e-6, 1e-6);
      expect_close(tag + " grad", d, ref.grad, 1e-5, 1e-9);
      // No gradient wanted: same loss.
      int count2 = -1;
      CHECK(k.be->cross_entropy(logits.data(), t.data(), rows, V, grad_scale, nullptr, &count2) == sum);
      CHECK(count2 == ref.count);
      // dlogits may be the logits buffer itself.
      auto inplace = logits;
      CHECK(k.be->cross_entropy(inplace.data(), t.data(), rows, V, grad_scale, inplace.data(), &count2) == sum);
      CHECK(same_bits(inplace, d));
      if (g_first.empty()) g_first = d;
      if (k.name.rfind("portable", 0) == 0) CHECK(same_bits(d, g_first));
      std::vector<int32_t> bad = t;
      bad[0] = V;
      CHECK(throws_error([&] { k.be->cross_entropy(logits.data(), bad.data(), rows, V, 1.0f, nullptr, &count2); }));
      bad[0] = -1;
      CHECK(throws_error([&] { k.be->cross_entropy(logits.data(), bad.data(), rows, V, 1.0f, nullptr, &count2); }));
    }
  }
  // Finite differences of the summed loss (grad_scale 1 gives its gradient).
  CpuBackend be(2);
  const int rows = 3, V = 37;
  auto logits = optest::random_vec(static_cast<size_t>(rows) * V, r, -3.0f, 3.0f);
  const std::vector<int32_t> t = {4, -100, 36};
  std::vector<float> grad(logits.size());
  int count = 0;
  be.cross_entropy(logits.data(), t.data(), rows, V, 1.0f, grad.data(), &count);
  auto loss = [&]() { return be.cross_entropy(logits.data(), t.data(), rows, V, 1.0f, nullptr, &count); };
  Rand pr(13);
  optest::expect_fd("cross_entropy fd", logits, grad, 24, 1e-2f, 2e-3, 1e-5, pr, loss);
}

// ---- optimizers ---------------------------------------------------------------------

// torch.optim.AdamW (single-tensor path), in float64.
void adamw_ref(std::vector<double>& p, const std::vector<float>& g, std::vector<double>& m, std::vector<double>& v,
               double lr, double b1, double b2, double eps, double wd, int step, double grad_scale) {
  const double bc1 = 1 - std::pow(b1, step), bc2 = 1 - std::pow(b2, step);
  for (size_t i = 0; i < p.size(); ++i) {
    const double gi = g[i] * grad_scale;
    p[i] *= 1 - lr * wd;
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
  }
}

void test_adamw() {
  Rand r(14);
  const size_t n = 1003;
  for (float beta1 : {0.9f, 0.3f}) {  // torch's lerp has two branches (weight below/above 0.5)
    const float lr = 1e-2f, beta2 = 0.999f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
    const auto p0 = optest::random_vec(n, r);
    std::vector<std::vector<float>> grads;
    for (int s = 0; s < 5; ++s) grads.push_back(optest::random_vec(n, r));
    for (auto& k : kernels()) {
      std::vector<float> p = p0, m(n, 0.0f), v(n, 0.0f);
      std::vector<double> pr = to_double(p0), mr(n, 0.0), vr(n, 0.0);
      for (int step = 1; step <= 5; ++step) {
        k.be->adamw_step(p.data(), grads[step - 1].data(), m.data(), v.data(), n, lr, beta1, beta2, eps, wd, step, gs);
        adamw_ref(pr, grads[step - 1], mr, vr, lr, beta1, beta2, eps, wd, step, gs);
        const std::string tag = k.name + " adamw b1=" + std::to_string(beta1) + " step " + std::to_string(step);
        expect_close(tag + " p", p, pr, 1e-5, 1e-6);
        expect_close(tag + " m", m, mr, 1e-5, 1e-7);
        expect_close(tag + " v", v, vr, 1e-5, 1e-9);
      }
      CHECK(throws_error([&] {
        k.be->adamw_step(p.data(), grads[0].data(), m.data(), v.data(), n, lr, beta1, beta2, eps, wd, 0, gs);
      }));
    }
  }
}

void test_sgd_and_norm() {
  Rand r(15);
  const size_t n = 100003;
  const float lr = 0.1f, wd = 0.01f, gs = 2.0f;
  const auto p0 = optest::random_vec(n, r);
  std::vector<std::vector<float>> grads;
  for (int s = 0; s < 3; ++s) grads.push_back(optest::random_vec(n, r));
  double ss_ref = 0;
  for (float x : grads[0]) ss_ref += static_cast<double>(x) * x;
  double ss_first = -1;
  for (auto& k : kernels()) {
    std::vector<float> p = p0;
    std::vector<double> pr = to_double(p0);
    for (int s = 0; s < 3; ++s) {
      k.be->sgd_step(p.data(), grads[s].data(), n, lr, wd, gs);
      // torch.optim.SGD without momentum: d = g + wd p; p -= lr d
      for (size_t i = 0; i < n; ++i) pr[i] -= lr * (grads[s][i] * static_cast<double>(gs) + wd * pr[i]);
      expect_close(k.name + " sgd step " + std::to_string(s + 1), p, pr, 1e-5, 1e-6);
    }
    const double ss = k.be->sum_squares(grads[0].data(), n);
    CHECK_CLOSE(ss, ss_ref, 1e-12, 0.0);
    if (ss_first < 0) ss_first = ss;
    CHECK(ss == ss_first);  // fixed blocks: the same bits for any thread count
    CHECK(k.be->sum_squares(grads[0].data(), 0) == 0.0);
  }
}

}  // namespace

int main() {
  test_vector_exp();
  test_add_and_bias();
  test_dropout();
  test_embedding();
  test_rmsnorm();
  test_rope();
  test_swiglu();
  test_cross_entropy();
  test_adamw();
  test_sgd_and_norm();
  return pstest::finish("test_ops");
}
