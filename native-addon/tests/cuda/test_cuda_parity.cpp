// Parity of the CUDA backend with the CPU backend, op by op: the same seeded
// random inputs go through both, and the CUDA results must match the CPU's
// within the tolerances below. Exits 77 (CTest: skipped) when there is no
// CUDA device.
//
// Tolerances (fp32, inputs mostly uniform in [-1, 1]); |got - want| <= atol + rtol |want|:
//   bit-exact (compared as bits): dropout forward (the mask is a pure function
//     of (key, index)), half_to_float (all 65536 inputs), bf16_round, nf4_dequantize
//     (bitsandbytes' roundings), fill, copy, embedding_forward
//   elementwise with the same expression: rtol 1e-6 (add, add_bias,
//     bias_backward, embedding_backward, rope, dropout_backward, sgd)
//   transcendental or reordered sums: rtol 1e-5 / atol 1e-6 (swiglu: expf vs
//     the CPU's vm_exp; rmsnorm: a tree sum vs the CPU's lanes; adamw: nvcc may fuse
//     multiply-adds)
//   GEMM-like (K-term dot products in another order): rtol 1e-5, atol 2e-5
//     (gemm, lora, nf4 gemm, half gemm, attention: atol 5e-5)
//   cross-entropy: loss sum rtol 1e-6; dlogits atol 1e-7 * grad_scale-sized
//   sum_squares (double): rtol 1e-12
// Every comparison prints its worst error, so the log shows the margins.
//
// Under the CPU-side CUDA simulator (PS_CUDA_SIM: test_cuda_parity_sim in
// every CPU build's CTest) the same checks run on smaller sizes (kSim below)
// that keep every code path: odd sizes and tails, several blocks and warps,
// multi-chunk rows. The simulator's host libm is at least as accurate as
// CUDA's, so the tolerances stay the GPU's.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "check.h"
#include "bit_compare.h"
#include "device_buffers.h"
#include "error.h"
#include "op_test_util.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#ifdef PS_CUDA_SIM
#include "backend/cuda/sim/sim_control.h"
#endif

using ps::AttnShape;
using ps::CpuBackend;
using ps::CudaBackend;
using optest::Rand;
using optest::random_vec;

namespace {

using cudatest::compare_bits;
using cudatest::kSim;

using Dev = cudatest::DeviceBuffers;

// Checks every element and prints the worst one (pass or fail).
void compare(const std::string& what, const std::vector<float>& got, const std::vector<float>& want, double rtol,
             double atol) {
  if (got.size() != want.size()) {
    pstest::fail(__FILE__, __LINE__, what + ": size mismatch");
    return;
  }
  size_t bad = 0, worst = 0;
  double worst_ratio = -1, max_err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double lim = atol + rtol * std::fabs(static_cast<double>(want[i]));
    const double ratio = std::isnan(err) ? 1e300 : (lim > 0 ? err / lim : (err > 0 ? 1e300 : 0));
    if (!(err <= lim)) ++bad;
    if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
    if (err > max_err || std::isnan(err)) max_err = err;
  }
  std::printf("  %-44s n=%-8zu max|err|=%.3g  worst/limit=%.3g  %s\n", what.c_str(), got.size(), max_err,
              worst_ratio, bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__,
                 what + ": " + std::to_string(bad) + " elements off; worst [" + std::to_string(worst) + "] got " +
                     std::to_string(got[worst]) + " want " + std::to_string(want[worst]));
}

template <typename Fn>
bool throws_error(Fn&& fn, const char* needle) {
  try {
    fn();
  } catch (const ps::Error& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return true;
    std::printf("  unexpected message: %s\n", e.what());
    return false;
  }
  return false;
}

void test_memory(CudaBackend& g, Rand& r) {
  std::printf("memory\n");
  Dev dev(g);
  const std::vector<float> x = random_vec(1001, r);
  float* d = dev.put(x);
  compare_bits("upload/download round trip", dev.get(d, x.size()), x);
  g.fill(d, 3.25f, 1000);
  std::vector<float> want(1001, 3.25f);
  want[1000] = x[1000];
  compare_bits("fill (leaves the rest)", dev.get(d, x.size()), want);
  float* e = dev.put(std::vector<float>(1001, 0.0f));
  g.copy(e, d, 1001);
  compare_bits("copy", dev.get(e, 1001), want);
  // An allocation that cannot fit throws OutOfMemory and leaves the backend usable.
  bool oom = false;
  try {
    void* p = g.alloc(size_t(1) << 52);
    g.release(p);
  } catch (const ps::OutOfMemory& ex) {
    oom = true;
    std::printf("  4 PiB alloc -> OutOfMemory: %s\n", ex.what());
  }
  CHECK(oom);
  void* small = g.alloc(128);
  g.release(small);
}

void test_elementwise(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("elementwise\n");
  Dev dev(g);
  const int rows = 37, N = 300;
  const size_t n = static_cast<size_t>(rows) * N;
  const std::vector<float> x = random_vec(n, r), y0 = random_vec(n, r), b = random_vec(N, r);
  {
    std::vector<float> y = y0;
    c.add(y.data(), x.data(), n);
    float* dy = dev.put(y0);
    g.add(dy, dev.put(x), n);
    compare("add", dev.get(dy, n), y, 1e-6, 0);
  }
  {
    std::vector<float> y = y0;
    c.add_bias(y.data(), b.data(), rows, N);
    float* dy = dev.put(y0);
    g.add_bias(dy, dev.put(b), rows, N);
    compare("add_bias", dev.get(dy, n), y, 1e-6, 0);
  }
  {
    std::vector<float> db = b;
    c.bias_backward(x.data(), rows, N, db.data());
    float* ddb = dev.put(b);
    g.bias_backward(dev.put(x), rows, N, ddb);
    compare("bias_backward (accumulates)", dev.get(ddb, N), db, 1e-6, 1e-7);
  }
  {
    const std::vector<float> gate = random_vec(n, r, -8, 8), up = random_vec(n, r), dout = random_vec(n, r);
    std::vector<float> out(n), dgate = y0, dup = x;
    c.swiglu_forward(gate.data(), up.data(), out.data(), n);
    c.swiglu_backward(gate.data(), up.data(), dout.data(), dgate.data(), dup.data(), n);
    float *dg = dev.put(gate), *du = dev.put(up), *dd = dev.put(dout);
    float* dout_g = dev.put(std::vector<float>(n));
    float *ddg = dev.put(y0), *ddu = dev.put(x);
    g.swiglu_forward(dg, du, dout_g, n);
    g.swiglu_backward(dg, du, dd, ddg, ddu, n);
    compare("swiglu_forward", dev.get(dout_g, n), out, 1e-5, 1e-6);
    compare("swiglu_backward dgate (accumulates)", dev.get(ddg, n), dgate, 1e-5, 1e-6);
    compare("swiglu_backward dup (accumulates)", dev.get(ddu, n), dup, 1e-5, 1e-6);
  }
  {
    // Every 16-bit pattern, both formats.
    std::vector<uint16_t> all(65536);
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
    uint16_t* dall = dev.put(all);
    for (bool bf16 : {true, false}) {
      std::vector<float> want(all.size());
      c.half_to_float(all.data(), bf16, want.data(), all.size());
      float* dst = dev.put(std::vector<float>(all.size()));
      g.half_to_float(dall, bf16, dst, all.size());
      compare_bits(bf16 ? "half_to_float bf16 (all 65536)" : "half_to_float f16 (all 65536)",
                   dev.get(dst, all.size()), want);
    }
  }
  {
    // bf16_round: every fp32 exponent with random mantissas, exact ties both
    // ways, NaN and inf; values and bits as the CPU's (tests/test_bf16_activations
    // checks the CPU against an independent rounding).
    std::vector<float> x;
    for (uint32_t e = 0; e < 256; ++e)
      for (uint32_t m : {0x000000u, 0x008000u, 0x018000u, 0x7FFFFFu, 0x00FFFFu, 0x3A5A5Au}) {
        uint32_t bits = (e << 23) | m | (e % 2 ? 0x80000000u : 0u);
        float f;
        std::memcpy(&f, &bits, 4);
        x.push_back(f);
      }
    for (size_t i = 0; i < 5000; ++i) x.push_back(r.uniform(-1e4f, 1e4f));
    std::vector<float> want = x;
    std::vector<uint16_t> want_bits(x.size());
    c.bf16_round(want.data(), want_bits.data(), want.size());
    float* dx = dev.put(x);
    uint16_t* db = dev.put(std::vector<uint16_t>(x.size()));
    g.bf16_round(dx, db, x.size());
    compare_bits("bf16_round values", dev.get(dx, x.size()), want);
    compare_bits("bf16_round bits", dev.get(db, x.size()), want_bits);
    float* dy = dev.put(x);
    g.bf16_round(dy, nullptr, x.size());
    compare_bits("bf16_round without bits", dev.get(dy, x.size()), want);
  }
}

void test_dropout(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("dropout\n");
  Dev dev(g);
  const size_t n = kSim ? 30011 : 300007;  // the simulator: 118 blocks, a partial last one
  const std::vector<float> x = random_vec(n, r), dx0 = random_vec(n, r);
  float *dxin = dev.put(x), *dy = dev.put(std::vector<float>(n));
  for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 1.0f}) {
    const uint64_t key = 0x1234567890ABCDEFull + static_cast<uint64_t>(p * 100);
    std::vector<float> y(n);
    c.dropout_forward(x.data(), y.data(), n, p, key);
    g.dropout_forward(dxin, dy, n, p, key);
    compare_bits("dropout_forward p=" + std::to_string(p), dev.get(dy, n), y);
    std::vector<float> dx = dx0;
    c.dropout_backward(x.data(), dx.data(), n, p, key);
    float* ddx = dev.put(dx0);
    g.dropout_backward(dxin, ddx, n, p, key);
    compare("dropout_backward p=" + std::to_string(p), dev.get(ddx, n), dx, 1e-6, 1e-7);
  }
  CHECK(throws_error([&] { g.dropout_forward(dxin, dy, n, 1.5f, 1); }, "dropout probability"));
}

void test_embedding(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("embedding\n");
  Dev dev(g);
  const int V = 50, D = 72, rows = 300;
  const std::vector<float> table = random_vec(static_cast<size_t>(V) * D, r);
  std::vector<int32_t> ids(rows);
  for (auto& id : ids) id = r.integer(0, V - 1);  // many repeats: the backward's scatter-add
  const std::vector<float> dout = random_vec(static_cast<size_t>(rows) * D, r);
  std::vector<float> out(static_cast<size_t>(rows) * D);
  c.embedding_forward(ids.data(), rows, table.data(), D, out.data());
  int32_t* dids = dev.put(ids);
  float* dtab = dev.put(table);
  float* dout_g = dev.put(std::vector<float>(out.size()));
  g.embedding_forward(dids, rows, dtab, D, dout_g);
  compare_bits("embedding_forward", dev.get(dout_g, out.size()), out);
  std::vector<float> dtable = table;
  c.embedding_backward(ids.data(), rows, dout.data(), D, dtable.data());
  float* ddt = dev.put(table);
  g.embedding_backward(dids, rows, dev.put(dout), D, ddt);
  compare("embedding_backward (accumulates)", dev.get(ddt, dtable.size()), dtable, 1e-6, 1e-7);
  // A negative id is reported at the next synchronising call, then cleared.
  std::vector<int32_t> bad = ids;
  bad[17] = -5;
  int32_t* dbad = dev.put(bad);
  g.embedding_forward(dbad, rows, dtab, D, dout_g);
  CHECK(throws_error([&] { g.synchronize(); }, "token id -5 at row 17"));
  g.synchronize();  // cleared: no second report
}

void test_rmsnorm(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("rmsnorm\n");
  for (auto [rows, D] : {std::pair<int, int>{33, 200}, {3, 4096}, {64, 64}, {kSim ? 130 : 2048, 576}}) {
    Dev dev(g);
    const size_t n = static_cast<size_t>(rows) * D;
    const std::vector<float> x = random_vec(n, r, -3, 3), w = random_vec(D, r, 0.5f, 1.5f), dy = random_vec(n, r);
    const std::vector<float> dx0 = random_vec(n, r), dw0 = random_vec(D, r);
    std::vector<float> y(n), rstd(rows), dx = dx0, dw = dw0;
    c.rmsnorm_forward(x.data(), w.data(), y.data(), rstd.data(), rows, D, 1e-5f);
    c.rmsnorm_backward(dy.data(), x.data(), w.data(), rstd.data(), rows, D, dx.data(), dw.data());
    float *dxg = dev.put(x), *dwg = dev.put(w), *dyg = dev.put(std::vector<float>(n)),
          *drs = dev.put(std::vector<float>(rows));
    g.rmsnorm_forward(dxg, dwg, dyg, drs, rows, D, 1e-5f);
    const std::string tag = " [" + std::to_string(rows) + "x" + std::to_string(D) + "]";
    compare("rmsnorm_forward y" + tag, dev.get(dyg, n), y, 1e-5, 1e-6);
    compare("rmsnorm_forward rstd" + tag, dev.get(drs, rows), rstd, 1e-5, 0);
    float *ddx = dev.put(dx0), *ddw = dev.put(dw0);
    g.rmsnorm_backward(dev.put(dy), dxg, dwg, dev.put(rstd), rows, D, ddx, ddw);
    compare("rmsnorm_backward dx (accumulates)" + tag, dev.get(ddx, n), dx, 1e-5, 1e-6);
    compare("rmsnorm_backward dw (accumulates)" + tag, dev.get(ddw, D), dw, 1e-5, 1e-6);
  }
}

void test_rope(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("rope\n");
  Dev dev(g);
  const int rows = 23, H = 3, D = 16, max_pos = 64, half = D / 2;
  std::vector<float> cs(static_cast<size_t>(max_pos) * half), sn(cs.size());
  for (int p = 0; p < max_pos; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = p * std::pow(10000.0, -2.0 * i / D);
      cs[p * half + i] = static_cast<float>(std::cos(a));
      sn[p * half + i] = static_cast<float>(std::sin(a));
    }
  std::vector<int32_t> pos(rows);
  for (auto& p : pos) p = r.integer(0, max_pos - 1);
  const std::vector<float> x0 = random_vec(static_cast<size_t>(rows) * H * D, r);
  std::vector<float> x = x0;
  c.rope_forward(x.data(), pos.data(), rows, H, D, cs.data(), sn.data());
  float *dx = dev.put(x0), *dcs = dev.put(cs), *dsn = dev.put(sn);
  int32_t* dpos = dev.put(pos);
  g.rope_forward(dx, dpos, rows, H, D, dcs, dsn);
  compare("rope_forward", dev.get(dx, x.size()), x, 1e-6, 1e-7);
  c.rope_backward(x.data(), pos.data(), rows, H, D, cs.data(), sn.data());
  g.rope_backward(dx, dpos, rows, H, D, dcs, dsn);
  compare("rope_backward (after forward: back to x)", dev.get(dx, x.size()), x, 1e-6, 1e-7);
  CHECK(throws_error([&] { g.rope_forward(dx, dpos, rows, H, 7, dcs, dsn); }, "head dim must be even"));
}

void test_attention(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("attention\n");
  struct Case {
    AttnShape s;
    bool packed;  // two segments and trailing padding per row
  };
  std::vector<Case> cases;
  {
    AttnShape s;
    s.B = 2, s.T = 37, s.P = 0, s.Hq = 4, s.Hkv = 2, s.D = 16;
    cases.push_back({s, true});
  }
  {
    AttnShape s;
    s.B = 2, s.T = 20, s.P = 5, s.Hq = 2, s.Hkv = 1, s.D = 64;  // prefix tuning
    cases.push_back({s, true});
  }
  {
    AttnShape s;
    s.B = 1, s.T = 70, s.P = 0, s.Hq = 2, s.Hkv = 2, s.D = 128;
    cases.push_back({s, false});
  }
  {
    AttnShape s;
    s.B = 1, s.T = 9, s.P = 3, s.Hq = 3, s.Hkv = 3, s.D = 40;  // D not a multiple of 32
    cases.push_back({s, false});
  }
  {
    AttnShape s;
    s.B = 1, s.T = 11, s.P = 2, s.Hq = 2, s.Hkv = 1, s.D = 200;  // 7 of the 8 values per lane
    cases.push_back({s, true});
  }
  {
    AttnShape s;
    s.B = 2, s.T = kSim ? 90 : 300, s.P = 0, s.Hq = 8, s.Hkv = 2, s.D = 64;  // Llama-like GQA, longer rows
    cases.push_back({s, true});
  }
  for (const Case& k : cases) {
    const AttnShape& s = k.s;
    Dev dev(g);
    const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D;
    const size_t nk = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
    const std::vector<float> q = random_vec(nq, r, -2, 2), kk = random_vec(nk, r, -2, 2), v = random_vec(nk, r);
    const std::vector<float> dout = random_vec(nq, r);
    std::vector<int32_t> seg(static_cast<size_t>(s.B) * s.T, 0);
    if (k.packed)
      for (int b = 0; b < s.B; ++b)
        for (int t = 0; t < s.T; ++t)
          seg[b * s.T + t] = t < s.T / 2 ? 3 : t < s.T - 3 ? 7 : -1;
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
    std::vector<float> out(nq), lse(static_cast<size_t>(s.B) * s.Hq * s.T);
    c.attention_forward(s, q.data(), kk.data(), v.data(), seg.data(), scale, out.data(), lse.data());
    float *dq_in = dev.put(q), *dk_in = dev.put(kk), *dv_in = dev.put(v);
    int32_t* dseg = dev.put(seg);
    float *dout_g = dev.put(std::vector<float>(nq)), *dlse = dev.put(std::vector<float>(lse.size()));
    g.attention_forward(s, dq_in, dk_in, dv_in, dseg, scale, dout_g, dlse);
    const std::string tag = " [B" + std::to_string(s.B) + " T" + std::to_string(s.T) + " P" + std::to_string(s.P) +
                            " Hq" + std::to_string(s.Hq) + " Hkv" + std::to_string(s.Hkv) + " D" +
                            std::to_string(s.D) + "]";
    compare("attention_forward out" + tag, dev.get(dout_g, nq), out, 1e-4, 5e-5);
    compare("attention_forward lse" + tag, dev.get(dlse, lse.size()), lse, 1e-5, 5e-5);
    // Backward accumulates into nonzero gradients.
    const std::vector<float> gq0 = random_vec(nq, r), gk0 = random_vec(nk, r), gv0 = random_vec(nk, r);
    std::vector<float> gq = gq0, gk = gk0, gv = gv0;
    c.attention_backward(s, q.data(), kk.data(), v.data(), seg.data(), scale, out.data(), lse.data(), dout.data(),
                         gq.data(), gk.data(), gv.data());
    float *dgq = dev.put(gq0), *dgk = dev.put(gk0), *dgv = dev.put(gv0);
    g.attention_backward(s, dq_in, dk_in, dv_in, dseg, scale, dev.put(out), dev.put(lse), dev.put(dout), dgq, dgk,
                         dgv);
    compare("attention_backward dq" + tag, dev.get(dgq, nq), gq, 1e-4, 5e-5);
    compare("attention_backward dk" + tag, dev.get(dgk, nk), gk, 1e-4, 5e-5);
    compare("attention_backward dv" + tag, dev.get(dgv, nk), gv, 1e-4, 5e-5);
    // dv alone (the dq/dk pass is skipped).
    std::vector<float> gv_only = gv0;
    c.attention_backward(s, q.data(), kk.data(), v.data(), seg.data(), scale, out.data(), lse.data(), dout.data(),
                         nullptr, nullptr, gv_only.data());
    float* dgv2 = dev.put(gv0);
    g.attention_backward(s, dq_in, dk_in, dv_in, dseg, scale, dev.put(out), dev.put(lse), dev.put(dout), nullptr,
                         nullptr, dgv2);
    compare("attention_backward dv only" + tag, dev.get(dgv2, nk), gv_only, 1e-4, 5e-5);
  }
}

void test_cross_entropy(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("cross_entropy\n");
  Dev dev(g);
  const int rows = 7, V = 2500;  // three chunks of 1024, the last partial
  std::vector<float> logits = random_vec(static_cast<size_t>(rows) * V, r, -6, 6);
  for (int j = 1024; j < 2048; ++j) logits[2 * V + j] = -INFINITY;  // a whole chunk of -inf
  const std::vector<int32_t> targets = {5, -100, 100, 2499, 0, -100, 1500};  // row 2: not in its -inf chunk
  const float grad_scale = 0.37f;
  int32_t* dt = dev.put(targets);
  // (a) loss only, (b) separate dlogits, (c) dlogits aliasing logits
  int cc = 0, gc = 0;
  const double want = c.cross_entropy(logits.data(), targets.data(), rows, V, grad_scale, nullptr, &cc);
  float* dl = dev.put(logits);
  const double got = g.cross_entropy(dl, dt, rows, V, grad_scale, nullptr, &gc);
  std::printf("  cross_entropy loss sum: cuda %.12g cpu %.12g (count %d / %d)\n", got, want, gc, cc);
  CHECK_CLOSE(got, want, 1e-6, 0);
  CHECK(gc == cc && cc == 5);
  std::vector<float> d(logits.size());
  c.cross_entropy(logits.data(), targets.data(), rows, V, grad_scale, d.data(), &cc);
  float* dd = dev.put(std::vector<float>(d.size(), 9.0f));
  const double got_b = g.cross_entropy(dl, dt, rows, V, grad_scale, dd, &gc);
  CHECK_CLOSE(got_b, want, 1e-6, 0);
  compare("cross_entropy dlogits", dev.get(dd, d.size()), d, 1e-5, 1e-7);
  const double got_c = g.cross_entropy(dl, dt, rows, V, grad_scale, dl, &gc);  // in place
  CHECK_CLOSE(got_c, want, 1e-6, 0);
  compare("cross_entropy dlogits in place", dev.get(dl, d.size()), d, 1e-5, 1e-7);
  {  // Llama 3's vocabulary: 126 chunks per row
    const int rows2 = 3, V2 = 128256;
    const std::vector<float> big = random_vec(static_cast<size_t>(rows2) * V2, r, -10, 10);
    const std::vector<int32_t> t2 = {128255, 7, 64000};
    std::vector<float> d2(big.size());
    const double want2 = c.cross_entropy(big.data(), t2.data(), rows2, V2, 1.0f, d2.data(), &cc);
    float* gbig = dev.put(big);
    const double got2 = g.cross_entropy(gbig, dev.put(t2), rows2, V2, 1.0f, gbig, &gc);
    std::printf("  cross_entropy V=128256 loss sum: cuda %.12g cpu %.12g\n", got2, want2);
    CHECK_CLOSE(got2, want2, 1e-6, 0);
    compare("cross_entropy dlogits V=128256 in place", dev.get(gbig, d2.size()), d2, 1e-5, 1e-9);
  }
  std::vector<int32_t> bad = targets;
  bad[3] = V;
  int32_t* dbad = dev.put(bad);
  CHECK(throws_error([&] { g.cross_entropy(dl, dbad, rows, V, 1.0f, nullptr, &gc); }, "outside the vocabulary"));
}

void test_optimizer(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("optimizer\n");
  Dev dev(g);
  const size_t n = 10007;
  const std::vector<float> p0 = random_vec(n, r), g0 = random_vec(n, r), m0 = random_vec(n, r, -0.1f, 0.1f),
                           v0 = random_vec(n, r, 0.0f, 0.01f);
  for (float beta1 : {0.9f, 0.3f}) {  // both of torch's lerp forms
    std::vector<float> p = p0, m = m0, v = v0;
    c.adamw_step(p.data(), g0.data(), m.data(), v.data(), n, 1e-3f, beta1, 0.999f, 1e-8f, 0.01f, 3, 0.5f);
    float *dp = dev.put(p0), *dm = dev.put(m0), *dv = dev.put(v0);
    g.adamw_step(dp, dev.put(g0), dm, dv, n, 1e-3f, beta1, 0.999f, 1e-8f, 0.01f, 3, 0.5f);
    const std::string tag = " beta1=" + std::to_string(beta1);
    compare("adamw_step p" + tag, dev.get(dp, n), p, 1e-6, 1e-7);
    compare("adamw_step m" + tag, dev.get(dm, n), m, 1e-5, 1e-8);
    compare("adamw_step v" + tag, dev.get(dv, n), v, 1e-5, 1e-10);
  }
  {
    std::vector<float> p = p0;
    c.sgd_step(p.data(), g0.data(), n, 0.05f, 0.01f, 0.7f);
    float* dp = dev.put(p0);
    g.sgd_step(dp, dev.put(g0), n, 0.05f, 0.01f, 0.7f);
    compare("sgd_step", dev.get(dp, n), p, 1e-6, 1e-7);
  }
  for (size_t len : {size_t(1), size_t(100000), size_t(16384 * 3 + 5)}) {
    const std::vector<float> x = random_vec(len, r, -3, 3);
    const double want = c.sum_squares(x.data(), len), got = g.sum_squares(dev.put(x), len);
    std::printf("  sum_squares n=%zu: cuda %.17g cpu %.17g\n", len, got, want);
    CHECK_CLOSE(got, want, 1e-12, 0);
  }
}

void test_gemm(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("gemm\n");
  struct Shape {
    int M, N, K;
  };
  for (Shape sh : {Shape{67, 45, 131}, Shape{1, 300, 64}, Shape{130, 1, 77}, Shape{128, 128, 256}, Shape{5, 7, 0}}) {
    const int M = sh.M, N = sh.N, K = sh.K;
    for (int which = 0; which < 3; ++which) {
      for (float beta : {0.0f, 1.0f}) {
        Dev dev(g);
        // Padded leading dimensions: every stride is exercised.
        int lda, ldb, a_rows, b_rows;
        if (which == 0) lda = K + 3, a_rows = M, ldb = K + 1, b_rows = N;       // nt
        else if (which == 1) lda = K + 2, a_rows = M, ldb = N + 5, b_rows = K;  // nn
        else lda = M + 4, a_rows = K, ldb = N + 2, b_rows = K;                  // tn
        const int ldc = N + 3;
        const std::vector<float> A = random_vec(static_cast<size_t>(a_rows) * lda + 1, r);
        const std::vector<float> B = random_vec(static_cast<size_t>(b_rows) * ldb + 1, r);
        std::vector<float> C0 = random_vec(static_cast<size_t>(M) * ldc, r);
        if (beta == 0.0f)
          for (int i = 0; i < M; ++i) C0[static_cast<size_t>(i) * ldc] = NAN;  // beta 0 must not read C
        std::vector<float> C = C0;
        float *dA = dev.put(A), *dB = dev.put(B), *dC = dev.put(C0);
        const char* names[] = {"gemm_nt", "gemm_nn", "gemm_tn"};
        if (which == 0) {
          c.gemm_nt(M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          g.gemm_nt(M, N, K, 0.7f, dA, lda, dB, ldb, beta, dC, ldc);
        } else if (which == 1) {
          c.gemm_nn(M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          g.gemm_nn(M, N, K, 0.7f, dA, lda, dB, ldb, beta, dC, ldc);
        } else {
          c.gemm_tn(M, N, K, 0.7f, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          g.gemm_tn(M, N, K, 0.7f, dA, lda, dB, ldb, beta, dC, ldc);
        }
        compare(std::string(names[which]) + " M" + std::to_string(M) + " N" + std::to_string(N) + " K" +
                    std::to_string(K) + " beta" + std::to_string(static_cast<int>(beta)),
                dev.get(dC, C.size()), C, 1e-5, 2e-5);
      }
    }
  }
  Dev dev(g);
  float* d = dev.put(std::vector<float>(16));
  CHECK(throws_error([&] { g.gemm_nt(2, 2, 2, 1.0f, d, 2, d, 2, 0.5f, d, 2); }, "beta must be 0 or 1"));
  CHECK(throws_error([&] { g.gemm_nn(2, 4, 2, 1.0f, d, 2, d, 3, 0.0f, d, 4); }, "ldb 3 is below 4"));
}

void test_lora(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("lora\n");
  Dev dev(g);
  const int M = 33, N = 40, K = 50, R = 4;
  const float s = 2.0f;
  const std::vector<float> X = random_vec(static_cast<size_t>(M) * K, r), A = random_vec(static_cast<size_t>(R) * K, r),
                           B = random_vec(static_cast<size_t>(N) * R, r), Y0 = random_vec(static_cast<size_t>(M) * N, r),
                           dY = random_vec(static_cast<size_t>(M) * N, r);
  const std::vector<float> dA0 = random_vec(A.size(), r), dB0 = random_vec(B.size(), r), dX0 = random_vec(X.size(), r);
  std::vector<float> H(static_cast<size_t>(M) * R), Y = Y0, dH(H.size()), dA = dA0, dB = dB0, dX = dX0;
  c.lora_forward(M, N, K, R, s, X.data(), A.data(), B.data(), H.data(), Y.data());
  c.lora_backward(M, N, K, R, s, X.data(), A.data(), B.data(), H.data(), dY.data(), dH.data(), dA.data(), dB.data(),
                  dX.data());
  float *gX = dev.put(X), *gA = dev.put(A), *gB = dev.put(B), *gH = dev.put(std::vector<float>(H.size())),
        *gY = dev.put(Y0);
  g.lora_forward(M, N, K, R, s, gX, gA, gB, gH, gY);
  compare("lora_forward H", dev.get(gH, H.size()), H, 1e-5, 2e-5);
  compare("lora_forward Y (accumulates)", dev.get(gY, Y.size()), Y, 1e-5, 2e-5);
  float *gdH = dev.put(std::vector<float>(H.size())), *gdA = dev.put(dA0), *gdB = dev.put(dB0), *gdX = dev.put(dX0);
  g.lora_backward(M, N, K, R, s, gX, gA, gB, gH, dev.put(dY), gdH, gdA, gdB, gdX);
  compare("lora_backward dH", dev.get(gdH, dH.size()), dH, 1e-5, 2e-5);
  compare("lora_backward dA (accumulates)", dev.get(gdA, dA.size()), dA, 1e-5, 2e-5);
  compare("lora_backward dB (accumulates)", dev.get(gdB, dB.size()), dB, 1e-5, 2e-5);
  compare("lora_backward dX (accumulates)", dev.get(gdX, dX.size()), dX, 1e-5, 2e-5);
}

void test_nf4(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("nf4\n");
  struct Case {
    int N, K, bs;
    bool dq;
  };
  // K % blocksize != 0: blocks cross row ends; N*K odd: a half-used last byte.
  for (Case k : {Case{48, 80, 64, true}, Case{48, 80, 64, false}, Case{33, 300, 128, true}, Case{7, 33, 32, true}}) {
    Dev dev(g);
    const std::vector<float> w = random_vec(static_cast<size_t>(k.N) * k.K, r, -0.2f, 0.2f);
    const ps::Nf4Quantized q = ps::nf4_quantize(w.data(), k.N, k.K, k.bs, k.dq);
    const ps::Nf4Weight host = q.view();
    ps::Nf4Weight dw = host;  // the same weight with device pointers
    dw.codes = dev.put(q.codes);
    if (k.dq) {
      dw.absmax_codes = dev.put(q.absmax_codes);
      dw.nested_absmax = dev.put(q.nested_absmax);
      dw.absmax_map = dev.put(std::vector<float>(ps::dynamic_map_signed(), ps::dynamic_map_signed() + 256));
    } else {
      dw.absmax = dev.put(q.absmax);
    }
    const std::string tag = " [" + std::to_string(k.N) + "x" + std::to_string(k.K) + " bs" + std::to_string(k.bs) +
                            (k.dq ? " dq]" : "]");
    std::vector<float> want(w.size());
    c.nf4_dequantize(host, want.data());
    float* got = dev.put(std::vector<float>(w.size()));
    g.nf4_dequantize(dw, got);
    compare_bits("nf4_dequantize" + tag, dev.get(got, w.size()), want);
    // The GEMMs dequantize a chunk of rows at a time: once in one chunk, once
    // in chunks of 5 rows (chunks starting inside a quantization block, and,
    // for 7 x 33, on an odd element: the low nibble of a byte).
    const size_t default_bound = g.weight_chunk_values();
    for (size_t bound : {default_bound, static_cast<size_t>(5) * k.K}) {
      g.set_weight_chunk_values(bound);
      const std::string ctag = tag + (bound == default_bound ? "" : " chunks of 5 rows");
      for (int M : {1, 40}) {
        for (float beta : {0.0f, 1.0f}) {
          const std::vector<float> X = random_vec(static_cast<size_t>(M) * k.K, r);
          const std::vector<float> Y0 = random_vec(static_cast<size_t>(M) * k.N, r);
          std::vector<float> Y = Y0;
          c.nf4_gemm_nt(M, X.data(), k.K, host, 0.9f, beta, Y.data(), k.N);
          float* gY = dev.put(Y0);
          g.nf4_gemm_nt(M, dev.put(X), k.K, dw, 0.9f, beta, gY, k.N);
          compare("nf4_gemm_nt M" + std::to_string(M) + " beta" + std::to_string(static_cast<int>(beta)) + ctag,
                  dev.get(gY, Y.size()), Y, 1e-5, 2e-5);
          const std::vector<float> dY = random_vec(static_cast<size_t>(M) * k.N, r);
          const std::vector<float> dX0 = random_vec(static_cast<size_t>(M) * k.K, r);
          std::vector<float> dX = dX0;
          c.nf4_gemm_nn(M, dY.data(), k.N, host, 1.0f, beta, dX.data(), k.K);
          float* gdX = dev.put(dX0);
          g.nf4_gemm_nn(M, dev.put(dY), k.N, dw, 1.0f, beta, gdX, k.K);
          compare("nf4_gemm_nn M" + std::to_string(M) + " beta" + std::to_string(static_cast<int>(beta)) + ctag,
                  dev.get(gdX, dX.size()), dX, 1e-5, 2e-5);
        }
      }
    }
    g.set_weight_chunk_values(default_bound);
  }
}

// Random finite 16-bit values of magnitude in [2^-5, 2^-1) with random
// mantissas, built from their bits (bfloat16: 8 exponent bits, 7 mantissa
// bits; IEEE half: 5 and 10), so every mantissa bit is exercised.
std::vector<uint16_t> random_half(size_t n, bool bf16, Rand& r) {
  std::vector<uint16_t> h(n);
  for (auto& v : h) {
    const uint16_t sign = static_cast<uint16_t>((r.next() & 1) << 15);
    const int e = r.integer(-5, -2);  // unbiased exponent
    const uint16_t mant = static_cast<uint16_t>(r.next() & (bf16 ? 0x7F : 0x3FF));
    v = bf16 ? static_cast<uint16_t>(sign | ((e + 127) << 7) | mant)
             : static_cast<uint16_t>(sign | ((e + 15) << 10) | mant);
  }
  return h;
}

// half_gemm_nt / half_gemm_nn widen W a chunk of rows at a time (half_gemm.cu;
// 4 Mi values by default). A W past the default bound is too slow for the
// simulator, so the bound is lowered through set_weight_chunk_values (a setter
// for tests: the same code path on the device and in the simulator, at a
// size both run): 37 rows of 48 with 16 rows a chunk are chunks of 16, 16, 5.
// Each shape also runs unchunked (the default bound: one chunk).
void test_half_gemm(CpuBackend& c, CudaBackend& g, Rand& r) {
  std::printf("half_gemm (16-bit weights, chunked over W's rows)\n");
  const int N = 37, K = 48, rows_per_chunk = 16;
  const size_t default_bound = g.weight_chunk_values();
  for (bool bf16 : {true, false}) {
    Dev dev(g);
    const std::vector<uint16_t> w = random_half(static_cast<size_t>(N) * K, bf16, r);
    ps::HalfWeight host;
    host.data = w.data();
    host.bf16 = bf16;
    host.rows = N;
    host.cols = K;
    ps::HalfWeight dw = host;
    dw.data = dev.put(w);
    for (size_t bound : {default_bound, static_cast<size_t>(rows_per_chunk) * K}) {
      g.set_weight_chunk_values(bound);
      const std::string tag = std::string(bf16 ? " bf16" : " f16") +
                              (bound == default_bound ? " [1 chunk]" : " [3 chunks]");
      for (int M : {1, 40}) {
        for (float beta : {0.0f, 1.0f}) {
          const std::string name = " M" + std::to_string(M) + " beta" + std::to_string(static_cast<int>(beta)) + tag;
          const std::vector<float> X = random_vec(static_cast<size_t>(M) * K, r);
          const std::vector<float> Y0 = random_vec(static_cast<size_t>(M) * N, r);
          std::vector<float> Y = Y0;
          c.half_gemm_nt(M, X.data(), K, host, 0.9f, beta, Y.data(), N);
          float* gX = dev.put(X);
          float* gY = dev.put(Y0);
          g.half_gemm_nt(M, gX, K, dw, 0.9f, beta, gY, N);
          const std::vector<float> got = dev.get(gY, Y.size());
          compare("half_gemm_nt" + name, got, Y, 1e-5, 2e-5);
          if (kSim && bound != default_bound) {
            // Chunking W's rows splits Y's columns, not any column's dot
            // product: the own kernels give each column the same bits either
            // way (on a device cuBLASLt may pick another algorithm per shape).
            g.set_weight_chunk_values(default_bound);
            float* gY1 = dev.put(Y0);
            g.half_gemm_nt(M, gX, K, dw, 0.9f, beta, gY1, N);
            compare_bits("half_gemm_nt chunked == whole" + name, got, dev.get(gY1, Y.size()));
            g.set_weight_chunk_values(bound);
          }
          const std::vector<float> dY = random_vec(static_cast<size_t>(M) * N, r);
          const std::vector<float> dX0 = random_vec(static_cast<size_t>(M) * K, r);
          std::vector<float> dX = dX0;
          c.half_gemm_nn(M, dY.data(), N, host, 1.0f, beta, dX.data(), K);
          float* gdX = dev.put(dX0);
          g.half_gemm_nn(M, dev.put(dY), N, dw, 1.0f, beta, gdX, K);
          compare("half_gemm_nn" + name, dev.get(gdX, dX.size()), dX, 1e-5, 2e-5);
        }
      }
    }
    g.set_weight_chunk_values(default_bound);
    // The argument checks run before any chunk.
    float* gY = dev.put(std::vector<float>(N));
    float* gX = dev.put(std::vector<float>(K));
    CHECK(throws_error([&] { g.half_gemm_nt(1, gX, K, dw, 1.0f, 0.5f, gY, N); }, "half_gemm_nt"));
    CHECK(throws_error([&] { g.half_gemm_nn(1, gY, N - 1, dw, 1.0f, 0.0f, gX, K); }, "half_gemm_nn"));
  }
  CHECK(throws_error([&] { g.set_weight_chunk_values(0); }, "set_weight_chunk_values"));
}

// The contract promises deterministic results: the same call twice gives the
// same bits (no float atomics, fixed reduction order). Under the simulator the
// second run resumes each block's threads in the reverse order, so a data race
// (a thread reading what another writes without a barrier between) would
// change the bits too: every kernel with shared memory or warp shuffles is here.
void test_determinism(CudaBackend& g, Rand& r) {
  std::printf("determinism (same call twice, same bits%s)\n", kSim ? "; simulator: threads resumed in reverse order" : "");
  Dev dev(g);
  AttnShape s;
  s.B = 2, s.T = kSim ? 67 : 129, s.P = 4, s.Hq = 4, s.Hkv = 2, s.D = 64;
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D, nk = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
  float *q = dev.put(random_vec(nq, r)), *k = dev.put(random_vec(nk, r)), *v = dev.put(random_vec(nk, r));
  float* dout = dev.put(random_vec(nq, r));
  int32_t* seg = dev.put(std::vector<int32_t>(static_cast<size_t>(s.B) * s.T, 1));
  const int rows = kSim ? 515 : 4096, N = 512, V = 2500;
  float* x = dev.put(random_vec(static_cast<size_t>(rows) * N, r));
  float* w = dev.put(random_vec(N, r, 0.5f, 1.5f));
  float* logits = dev.put(random_vec(static_cast<size_t>(9) * V, r, -5, 5));
  std::vector<int32_t> t(9);
  for (auto& id : t) id = r.integer(0, V - 1);
  int32_t* targets = dev.put(t);
  std::vector<float> bits[2];
  double sq[2], loss[2];
  for (int run = 0; run < 2; ++run) {
#ifdef PS_CUDA_SIM
    ps::cudasim::set_reverse_thread_order(run == 1);
#endif
    auto keep = [&](const float* p, size_t n) {
      const std::vector<float> h = dev.get(p, n);
      bits[run].insert(bits[run].end(), h.begin(), h.end());
    };
    float *out = dev.put(std::vector<float>(nq)), *lse = dev.put(std::vector<float>(static_cast<size_t>(s.B) * s.Hq * s.T));
    g.attention_forward(s, q, k, v, seg, 0.125f, out, lse);
    float *dq = dev.put(std::vector<float>(nq)), *dk = dev.put(std::vector<float>(nk)), *dv = dev.put(std::vector<float>(nk));
    g.attention_backward(s, q, k, v, seg, 0.125f, out, lse, dout, dq, dk, dv);
    keep(out, nq), keep(lse, static_cast<size_t>(s.B) * s.Hq * s.T), keep(dq, nq), keep(dk, nk), keep(dv, nk);
    float* db = dev.put(std::vector<float>(N));
    g.bias_backward(x, rows, N, db);
    keep(db, N);
    sq[run] = g.sum_squares(x, static_cast<size_t>(rows) * N);
    const size_t n = static_cast<size_t>(rows) * N;
    float *y = dev.put(std::vector<float>(n)), *rstd = dev.put(std::vector<float>(rows));
    float *dx = dev.put(std::vector<float>(n)), *dw = dev.put(std::vector<float>(N));
    g.rmsnorm_forward(x, w, y, rstd, rows, N, 1e-5f);
    g.rmsnorm_backward(x, x, w, rstd, rows, N, dx, dw);
    keep(y, n), keep(rstd, rows), keep(dx, n), keep(dw, N);
    float* c = dev.put(std::vector<float>(static_cast<size_t>(rows) * 70));
    g.gemm_nt(rows, 70, N, 1.0f, x, N, x + 3 * N, N, 0.0f, c, 70);
    keep(c, static_cast<size_t>(rows) * 70);
    float* dl = dev.put(std::vector<float>(static_cast<size_t>(9) * V));
    int count = 0;
    loss[run] = g.cross_entropy(logits, targets, 9, V, 0.5f, dl, &count);
    keep(dl, static_cast<size_t>(9) * V);
  }
#ifdef PS_CUDA_SIM
  ps::cudasim::set_reverse_thread_order(false);
#endif
  compare_bits("attention, bias_backward, rmsnorm, gemm, cross_entropy twice", bits[1], bits[0]);
  CHECK(sq[0] == sq[1]);
  CHECK(loss[0] == loss[1]);
}

// PS_CUDA_PARITY_TIMING=1: rough timings of the reference kernels at
// Llama-3.2-1B-like sizes, so the first GPU run also says where the time goes
// (not a benchmark: fp32, simple kernels, wall clock around synchronize()).
void time_ops(CudaBackend& g, Rand& r) {
  std::printf("timing (reference kernels, fp32)\n");
  Dev dev(g);
  auto time_ms = [&](auto&& fn) {
    fn();  // warm-up
    g.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    const int reps = 3;
    for (int i = 0; i < reps; ++i) fn();
    g.synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  };
  {
    const int M = 2048, N = 2048, K = 2048;
    float *A = dev.put(random_vec(static_cast<size_t>(M) * K, r)), *B = dev.put(random_vec(static_cast<size_t>(N) * K, r));
    float* C = dev.put(std::vector<float>(static_cast<size_t>(M) * N));
    const double ms = time_ms([&] { g.gemm_nt(M, N, K, 1.0f, A, K, B, K, 0.0f, C, N); });
    std::printf("  gemm_nt 2048^3: %.2f ms, %.0f GFLOP/s\n", ms, 2.0 * M * N * K / ms / 1e6);
  }
  {
    AttnShape s;
    s.B = 1, s.T = 2048, s.P = 0, s.Hq = 32, s.Hkv = 8, s.D = 64;
    const size_t nq = static_cast<size_t>(s.T) * s.Hq * s.D, nk = static_cast<size_t>(s.T) * s.Hkv * s.D;
    float *q = dev.put(random_vec(nq, r)), *k = dev.put(random_vec(nk, r)), *v = dev.put(random_vec(nk, r));
    int32_t* seg = dev.put(std::vector<int32_t>(s.T, 0));
    float *out = dev.put(std::vector<float>(nq)), *lse = dev.put(std::vector<float>(static_cast<size_t>(s.Hq) * s.T));
    float *dq = dev.put(std::vector<float>(nq)), *dk = dev.put(std::vector<float>(nk)), *dv = dev.put(std::vector<float>(nk));
    const double fwd = time_ms([&] { g.attention_forward(s, q, k, v, seg, 0.125f, out, lse); });
    const double bwd = time_ms([&] { g.attention_backward(s, q, k, v, seg, 0.125f, out, lse, out, dq, dk, dv); });
    std::printf("  attention T2048 Hq32 Hkv8 D64: forward %.2f ms, backward %.2f ms\n", fwd, bwd);
  }
  {
    const int rows = 256, V = 128256;
    float* logits = dev.put(random_vec(static_cast<size_t>(rows) * V, r, -4, 4));
    std::vector<int32_t> t(rows);
    for (auto& x : t) x = r.integer(0, V - 1);
    int32_t* dt = dev.put(t);
    int count = 0;
    const double ms = time_ms([&] { g.cross_entropy(logits, dt, rows, V, 1.0f, logits, &count); });
    std::printf("  cross_entropy 256 x 128256 (in place): %.2f ms\n", ms);
  }
}

}  // namespace

int main() {
  std::string why;
  const int devices = ps::cuda_device_count(&why);
  if (devices == 0) {
    std::printf("test_cuda_parity: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  try {
    CudaBackend g(0);
    const ps::CudaDeviceInfo info = g.refreshed_info();
    std::printf("device: %s, compute capability %d.%d, %d SMs, %llu MiB total, %llu MiB free\n", info.name.c_str(),
                info.major, info.minor, info.multiprocessors,
                static_cast<unsigned long long>(info.total_bytes >> 20),
                static_cast<unsigned long long>(info.free_bytes >> 20));
    std::printf("backend: %s\n", g.describe().c_str());
    CpuBackend c(2);
    Rand r(20261128);
    // Each section's wall time goes to the log (the simulator's budget in CTest).
    auto timed = [](const char* name, auto&& fn) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      std::printf("  (%s: %.2f s)\n", name,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    timed("memory", [&] { test_memory(g, r); });
    timed("elementwise", [&] { test_elementwise(c, g, r); });
    timed("dropout", [&] { test_dropout(c, g, r); });
    timed("embedding", [&] { test_embedding(c, g, r); });
    timed("rmsnorm", [&] { test_rmsnorm(c, g, r); });
    timed("rope", [&] { test_rope(c, g, r); });
    timed("attention", [&] { test_attention(c, g, r); });
    timed("cross_entropy", [&] { test_cross_entropy(c, g, r); });
    timed("optimizer", [&] { test_optimizer(c, g, r); });
    timed("gemm", [&] { test_gemm(c, g, r); });
    timed("lora", [&] { test_lora(c, g, r); });
    timed("nf4", [&] { test_nf4(c, g, r); });
    timed("half_gemm", [&] { test_half_gemm(c, g, r); });
    timed("determinism", [&] { test_determinism(g, r); });
    g.synchronize();
    const char* timing = std::getenv("PS_CUDA_PARITY_TIMING");
    if (timing && std::string(timing) == "1" && kSim) {
      std::printf("timing skipped: the CPU simulator says nothing about GPU speed\n");
    } else if (timing && std::string(timing) == "1") {
      try {  // informational: a failure here does not fail the parity test
        time_ops(g, r);
      } catch (const ps::Error& e) {
        std::printf("timing aborted: %s\n", e.what());
      }
    }
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  return pstest::finish("test_cuda_parity");
}
