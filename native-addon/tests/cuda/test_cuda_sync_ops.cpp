// The CUDA side of the "few round trips" ops (backend.h, section "syncs"),
// against the CPU backend and against the CUDA ops they replace in the
// engine. Runs on a GPU (exits 77 without one) and, as
// test_cuda_sync_ops_sim, on the CPU-side CUDA simulator.
//   sum_squares_many: each result equals CUDA sum_squares bit for bit (same
//     blocks, same tree, same order), > 128 tensors so several launches run;
//     against the CPU rtol 1e-12.
//   cross_entropy_rows: rows summed in order equal CUDA cross_entropy's
//     return bit for bit, dlogits too (also in place); per row against the
//     CPU rtol 1e-6 (as test_cuda_parity's loss).
//   tanh_forward: rtol 5e-7 against the CPU (tanhf vs libm, a few ulps);
//   tanh_backward from the same y: the CPU's bits (explicit roundings).
//   embedding_forward_half: the CPU's bits; bad ids and targets are errors
//     at the next synchronising call.
//   DoRA's scale_columns, column_dot, dora_norm, NEFTune's add_uniform_noise: the CPU's bits.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "check.h"
#include "device_buffers.h"
#include "error.h"
#include "op_test_util.h"

using optest::Rand;
using optest::random_vec;

namespace {

using Dev = cudatest::DeviceBuffers;

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void report(const char* what, bool ok) {
  std::printf("  %-52s %s\n", what, ok ? "ok" : "FAIL");
  if (!ok) pstest::fail(__FILE__, __LINE__, what);
}

// The error a bad index leaves for the next synchronising call.
bool error_at_sync(ps::CudaBackend& g, const std::string& needle) {
  try {
    g.synchronize();
  } catch (const ps::Error& e) {
    std::printf("  (error at the next sync: %s)\n", e.what());
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

void test_sum_squares_many(ps::CpuBackend& c, ps::CudaBackend& g, Rand& r) {
  Dev dev(g);
  std::vector<std::vector<float>> host;
  std::vector<const float*> xs_cpu, xs_dev;
  std::vector<size_t> ns;
  for (int i = 0; i < 300; ++i) {
    const size_t n = i == 7 ? 40000 : i % 37 == 5 ? 0 : 1 + (static_cast<size_t>(i) * 2654435761u) % 5000;
    host.push_back(random_vec(n, r));
    ns.push_back(n);
  }
  for (const auto& h : host) {
    xs_cpu.push_back(h.data());
    xs_dev.push_back(dev.put(h));
  }
  std::vector<double> got(ns.size(), -1), want(ns.size(), -1), one(ns.size(), -1);
  g.sum_squares_many(xs_dev.data(), ns.data(), static_cast<int>(ns.size()), got.data());
  c.sum_squares_many(xs_cpu.data(), ns.data(), static_cast<int>(ns.size()), want.data());
  bool close = true;
  for (size_t i = 0; i < ns.size(); ++i) {
    one[i] = g.sum_squares(xs_dev[i], ns[i]);
    close = close && pstest::close(got[i], want[i], 1e-12, 0.0);
  }
  report("sum_squares_many == cuda sum_squares per tensor (bits)", same_bits(got, one));
  report("sum_squares_many vs cpu (rtol 1e-12)", close);
  std::vector<double> again(ns.size());
  g.sum_squares_many(xs_dev.data(), ns.data(), static_cast<int>(ns.size()), again.data());
  report("sum_squares_many deterministic", same_bits(got, again));
}

void test_cross_entropy_rows(ps::CpuBackend& c, ps::CudaBackend& g, Rand& r) {
  for (int V : {50, 2500}) {
    Dev dev(g);
    const int rows = 29;
    const std::vector<float> logits = random_vec(static_cast<size_t>(rows) * V, r, -4.0f, 4.0f);
    std::vector<int32_t> t(rows);
    for (int i = 0; i < rows; ++i) t[i] = i % 5 == 3 ? -100 : static_cast<int32_t>(r.next() % V);
    const float gs = 0.25f;
    float* dl = dev.put(logits);
    int32_t* dt = dev.put(t);
    double* dloss = dev.put(std::vector<double>(rows, -1.0));
    float* dd = dev.put(std::vector<float>(logits.size(), 7.0f));
    g.cross_entropy_rows(dl, dt, rows, V, gs, dd, dloss);
    const std::vector<double> loss = dev.get(dloss, rows);
    const std::vector<float> d = dev.get(dd, logits.size());
    // cross_entropy (the summed op) is these rows added in order, and counts the rows that are not -100.
    int count = 0;
    float* dd_old = dev.put(std::vector<float>(logits.size(), 0.0f));
    const double old_sum = g.cross_entropy(dl, dt, rows, V, gs, dd_old, &count);
    double sum = 0.0;
    for (double l : loss) sum += l;
    int want_count = 0;
    for (int32_t x : t) want_count += x != -100;
    report(("cross_entropy: the rows summed in order and counted, V=" + std::to_string(V)).c_str(),
           std::memcmp(&sum, &old_sum, sizeof sum) == 0 && count == want_count);
    report("cross_entropy_rows: dlogits == cross_entropy's (bits)", same_bits(d, dev.get(dd_old, logits.size())));
    // Against the CPU, row by row.
    std::vector<double> cpu_loss(rows);
    std::vector<float> cpu_d(logits.size());
    c.cross_entropy_rows(logits.data(), t.data(), rows, V, gs, cpu_d.data(), cpu_loss.data());
    bool ok = true;
    for (int i = 0; i < rows; ++i) ok = ok && pstest::close(loss[i], cpu_loss[i], 1e-6, 1e-7);
    for (size_t i = 0; i < d.size(); ++i) ok = ok && pstest::close(d[i], cpu_d[i], 1e-5, 1e-7 * gs);
    report("cross_entropy_rows vs cpu (loss rtol 1e-6, dlogits)", ok);
    // In place.
    g.cross_entropy_rows(dl, dt, rows, V, gs, dl, dloss);
    report("cross_entropy_rows in place: same losses, same dlogits",
           same_bits(dev.get(dloss, rows), loss) && same_bits(dev.get(dl, logits.size()), d));
  }
  // A bad target: reported at the next synchronising call.
  Dev dev(g);
  const int V = 10, rows = 4;
  float* dl = dev.put(random_vec(rows * V, r));
  int32_t* dt = dev.put(std::vector<int32_t>{1, 2, 12, 3});
  double* dloss = dev.put(std::vector<double>(rows));
  g.cross_entropy_rows(dl, dt, rows, V, 1.0f, nullptr, dloss);
  report("cross_entropy_rows: bad target is an error at the next sync",
         error_at_sync(g, "cross_entropy_rows: target 12 at row 2 is outside the vocabulary"));
}

void test_tanh(ps::CpuBackend& c, ps::CudaBackend& g, Rand& r) {
  Dev dev(g);
  std::vector<float> x = random_vec(50001, r, -6.0f, 6.0f);
  x[0] = 0.0f;
  x[1] = -0.0f;
  x[2] = 1e-7f;
  float* dx = dev.put(x);
  g.tanh_forward(dx, x.size());
  const std::vector<float> y = dev.get(dx, x.size());
  std::vector<float> want = x;
  c.tanh_forward(want.data(), want.size());
  bool ok = true;
  for (size_t i = 0; i < y.size(); ++i) ok = ok && pstest::close(y[i], want[i], 5e-7, 1e-30);
  report("tanh_forward vs cpu (rtol 5e-7)", ok);
  // Backward from the CPU's y: the CPU's bits.
  const std::vector<float> grad = random_vec(x.size(), r);
  float* dy = dev.put(want);
  float* dgrad = dev.put(grad);
  g.tanh_backward(dy, dgrad, grad.size());
  std::vector<float> cpu_grad = grad;
  c.tanh_backward(want.data(), cpu_grad.data(), cpu_grad.size());
  report("tanh_backward == cpu (bits, same y)", same_bits(dev.get(dgrad, grad.size()), cpu_grad));
}

void test_embedding_half(ps::CpuBackend& c, ps::CudaBackend& g, Rand& r) {
  Dev dev(g);
  const int D = 64, table_rows = 1024, rows = 700;
  std::vector<uint16_t> table(static_cast<size_t>(table_rows) * D);
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<uint16_t>(i);  // every 16-bit pattern
  std::vector<int32_t> ids(rows);
  for (auto& id : ids) id = static_cast<int32_t>(r.next() % table_rows);
  uint16_t* dtab = dev.put(table);
  int32_t* dids = dev.put(ids);
  float* dout = dev.put(std::vector<float>(static_cast<size_t>(rows) * D));
  for (bool bf16 : {false, true}) {
    g.embedding_forward_half(dids, rows, dtab, bf16, table_rows, D, dout);
    std::vector<float> want(static_cast<size_t>(rows) * D);
    c.embedding_forward_half(ids.data(), rows, table.data(), bf16, table_rows, D, want.data());
    report(bf16 ? "embedding_forward_half bf16 == cpu (bits)" : "embedding_forward_half f16 == cpu (bits)",
           same_bits(dev.get(dout, want.size()), want));
  }
  std::vector<int32_t> bad = ids;
  bad[5] = table_rows;
  int32_t* dbad = dev.put(bad);
  g.embedding_forward_half(dbad, rows, dtab, true, table_rows, D, dout);
  report("embedding_forward_half: id past the table is an error at the next sync",
         error_at_sync(g, "embedding_forward_half: token id 1024 at row 5 is outside the table"));
}

// DoRA's ops (backend.h): the CPU's bits. column_dot over more rows than one
// chunk (column_dot_plan.h), not a multiple of it, so chunk sums and the
// finish both count; scale_columns overwriting, adding and in place.
void test_dora_ops(ps::CpuBackend& c, ps::CudaBackend& g, Rand& r) {
  Dev dev(g);
  const int rows = 3 * 256 + 17, N = 300, rank = 5;
  const std::vector<float> a = random_vec(static_cast<size_t>(rows) * N, r), b = random_vec(a.size(), r);
  const std::vector<float> f = random_vec(N, r, 0.5f, 1.5f), y0 = random_vec(a.size(), r);
  float* da = dev.put(a);
  float* df = dev.put(f);
  for (float beta : {0.0f, 1.0f}) {
    float* dy = dev.put(y0);
    g.scale_columns(da, df, -1.0f, rows, N, beta, dy);
    std::vector<float> want = y0;
    c.scale_columns(a.data(), f.data(), -1.0f, rows, N, beta, want.data());
    report(beta == 0.0f ? "scale_columns == cpu (bits)" : "scale_columns adding == cpu (bits)",
           same_bits(dev.get(dy, want.size()), want));
  }
  float* dself = dev.put(a);
  g.scale_columns(dself, df, 0.0f, rows, N, 0.0f, dself);
  std::vector<float> self = a;
  c.scale_columns(self.data(), f.data(), 0.0f, rows, N, 0.0f, self.data());
  report("scale_columns in place == cpu (bits)", same_bits(dev.get(dself, self.size()), self));

  const std::vector<float> scale = random_vec(N, r), out0 = random_vec(N, r);
  float* dout = dev.put(out0);
  g.column_dot(da, dev.put(b), dev.put(scale), rows, N, dout);
  std::vector<float> want = out0;
  c.column_dot(a.data(), b.data(), scale.data(), rows, N, want.data());
  bool close = true;
  for (int j = 0; j < N; ++j) {
    double s = 0;
    for (int i = 0; i < rows; ++i) s += static_cast<double>(a[static_cast<size_t>(i) * N + j]) * b[static_cast<size_t>(i) * N + j];
    close = close && pstest::close(want[j], out0[j] + scale[j] * s, 1e-6, 1e-6);
  }
  report("column_dot == cpu (bits), cpu within 1e-6 of a plain double sum",
         same_bits(dev.get(dout, want.size()), want) && close);

  const std::vector<float> w_sq = random_vec(N, r, 1.0f, 2.0f), PT = random_vec(static_cast<size_t>(rank) * N, r),
                           B = random_vec(static_cast<size_t>(N) * rank, r, -0.1f, 0.1f),
                           BC = random_vec(static_cast<size_t>(N) * rank, r, -0.1f, 0.1f), m = random_vec(N, r, 1.0f, 2.0f);
  float* dinv = dev.put(std::vector<float>(N));
  float* dfac = dev.put(std::vector<float>(N));
  g.dora_norm(N, rank, 2.0f, dev.put(w_sq), dev.put(PT), dev.put(B), dev.put(BC), dev.put(m), dinv, dfac);
  std::vector<float> inv(N), fac(N);
  c.dora_norm(N, rank, 2.0f, w_sq.data(), PT.data(), B.data(), BC.data(), m.data(), inv.data(), fac.data());
  report("dora_norm == cpu (bits)", same_bits(dev.get(dinv, N), inv) && same_bits(dev.get(dfac, N), fac));

  // NEFTune's noise: added onto values, over more than one grid's worth of elements
  const std::vector<float> x = random_vec(3000001, r);
  float* dx = dev.put(x);
  g.add_uniform_noise(dx, x.size(), 0.37f, 0x1234567890ull);
  std::vector<float> noisy = x;
  c.add_uniform_noise(noisy.data(), noisy.size(), 0.37f, 0x1234567890ull);
  report("add_uniform_noise == cpu (bits)", same_bits(dev.get(dx, x.size()), noisy) && !same_bits(noisy, x));
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_cuda_sync_ops: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    ps::CudaBackend g(0);
    ps::CpuBackend c(2);
    Rand r(20261129);
    test_sum_squares_many(c, g, r);
    test_cross_entropy_rows(c, g, r);
    test_tanh(c, g, r);
    test_embedding_half(c, g, r);
    test_dora_ops(c, g, r);
    g.synchronize();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_cuda_sync_ops");
}
