// Causal grouped-query attention of the CPU backend against a plain float64
// transcription of the contract in backend.h, and its backward against both a
// float64 analytic backward and central differences of L = sum(G * out).
//
// The shapes cover: GQA (Hq=4, Hkv=2) and plain multi-head, head dims that
// are not a multiple of the register tile (17, 20), rows that are padding
// (seg -1) at the start and the end, two packed segments in one row, P > 0
// prefix positions (also P > one key block), and T spanning several query and
// key blocks. Every kernel set (portable; AVX2 and AVX-512 when the CPU has
// them) and 1 and 2 threads are run; backward must be bit-identical across
// repeated runs for a thread count, pre-filled gradients must be added to, and
// nullptr gradients must leave the others unchanged bit for bit.
//
// Special paths the kernels take, each covered by a case: key blocks every
// query of a unit fully sees skip the mask ("interior": one long segment, a
// prefix of exactly one key block, and a second row of two segments whose
// blocks are mixed); T = 1 reads K/V unpacked and splits a kv head's query
// heads into runs ("decode", "decode-gqa": a padding row, keys across two
// blocks, more threads than kv heads).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "op_test_util.h"

using ps::AttnShape;
using ps::CpuBackend;
using optest::Rand;

namespace {

struct Case {
  std::string name;
  AttnShape s;
  std::vector<int32_t> seg;  // [B, T]
  bool fd = false;           // also run finite differences (small cases)
};

struct Inputs {
  std::vector<float> q, k, v, dout;
  float scale = 1.0f;
};

Inputs make_inputs(const AttnShape& s, uint64_t seed) {
  Rand r(seed);
  Inputs in;
  const size_t nq = static_cast<size_t>(s.B) * s.T * s.Hq * s.D;
  const size_t nkv = static_cast<size_t>(s.B) * s.S() * s.Hkv * s.D;
  // Spread 2 so some softmax rows are peaked, some flat.
  in.q = optest::random_vec(nq, r, -2.0f, 2.0f);
  in.k = optest::random_vec(nkv, r, -2.0f, 2.0f);
  in.v = optest::random_vec(nkv, r);
  in.dout = optest::random_vec(nq, r);
  in.scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  return in;
}

size_t qi(const AttnShape& s, int b, int t, int h, int d) {
  return ((static_cast<size_t>(b) * s.T + t) * s.Hq + h) * s.D + d;
}
size_t ki(const AttnShape& s, int b, int j, int g, int d) {
  return ((static_cast<size_t>(b) * s.S() + j) * s.Hkv + g) * s.D + d;
}

// ---- float64 reference, written from the contract --------------------------

bool visible(const Case& c, int b, int t, int js) {
  const AttnShape& s = c.s;
  const int seg_t = c.seg[static_cast<size_t>(b) * s.T + t];
  if (seg_t < 0) return false;
  if (js < s.P) return true;
  const int j = js - s.P;
  return j <= t && c.seg[static_cast<size_t>(b) * s.T + j] == seg_t;
}

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

Reference reference(const Case& c, const Inputs& in) {
  const AttnShape& s = c.s;
  const int S = s.S(), group = s.Hq / s.Hkv;
  Reference r;
  r.out.assign(in.q.size(), 0.0);
  r.lse.assign(static_cast<size_t>(s.B) * s.Hq * s.T, 0.0);
  r.dq.assign(in.q.size(), 0.0);
  r.dk.assign(in.k.size(), 0.0);
  r.dv.assign(in.v.size(), 0.0);
  std::vector<double> p(S), dp(S);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.Hq; ++h)
      for (int t = 0; t < s.T; ++t) {
        const int g = h / group;
        double m = -INFINITY;
        for (int js = 0; js < S; ++js) {
          p[js] = -INFINITY;
          if (!visible(c, b, t, js)) continue;
          double dot = 0;
          for (int d = 0; d < s.D; ++d) dot += static_cast<double>(in.q[qi(s, b, t, h, d)]) * in.k[ki(s, b, js, g, d)];
          p[js] = dot * in.scale;
          m = std::max(m, p[js]);
        }
        if (m == -INFINITY) continue;  // padding query
        double sum = 0;
        for (int js = 0; js < S; ++js) sum += std::exp(p[js] - m);
        const double lse = m + std::log(sum);
        r.lse[(static_cast<size_t>(b) * s.Hq + h) * s.T + t] = lse;
        for (int js = 0; js < S; ++js) p[js] = std::exp(p[js] - lse);
        for (int d = 0; d < s.D; ++d) {
          double o = 0;
          for (int js = 0; js < S; ++js) o += p[js] * in.v[ki(s, b, js, g, d)];
          r.out[qi(s, b, t, h, d)] = o;
        }
        // backward of this query row
        double delta = 0;
        for (int js = 0; js < S; ++js) {
          dp[js] = 0;
          for (int d = 0; d < s.D; ++d) dp[js] += static_cast<double>(in.dout[qi(s, b, t, h, d)]) * in.v[ki(s, b, js, g, d)];
          delta += p[js] * dp[js];
        }
        for (int js = 0; js < S; ++js) {
          if (p[js] == 0) continue;
          const double ds = p[js] * (dp[js] - delta) * in.scale;
          for (int d = 0; d < s.D; ++d) {
            r.dv[ki(s, b, js, g, d)] += p[js] * in.dout[qi(s, b, t, h, d)];
            r.dq[qi(s, b, t, h, d)] += ds * in.k[ki(s, b, js, g, d)];
            r.dk[ki(s, b, js, g, d)] += ds * in.q[qi(s, b, t, h, d)];
          }
        }
      }
  return r;
}

// ---- the backend under test ---------------------------------------------------

struct Result {
  std::vector<float> out, lse, dq, dk, dv;
};

void run_forward(CpuBackend& be, const Case& c, const Inputs& in, Result& r) {
  r.out.assign(in.q.size(), 123.0f);  // garbage: forward must overwrite
  r.lse.assign(static_cast<size_t>(c.s.B) * c.s.Hq * c.s.T, 123.0f);
  be.attention_forward(c.s, in.q.data(), in.k.data(), in.v.data(), c.seg.data(), in.scale,
                       r.out.data(), r.lse.data());
}

// Backward on top of pre-filled gradients `pre_*` (or nullptr where asked).
void run_backward(CpuBackend& be, const Case& c, const Inputs& in, const Result& fwd,
                  const std::vector<float>& pre_q, const std::vector<float>& pre_k,
                  const std::vector<float>& pre_v, bool want_q, bool want_k, bool want_v,
                  Result& r) {
  r.dq = pre_q;
  r.dk = pre_k;
  r.dv = pre_v;
  be.attention_backward(c.s, in.q.data(), in.k.data(), in.v.data(), c.seg.data(), in.scale,
                        fwd.out.data(), fwd.lse.data(), in.dout.data(), want_q ? r.dq.data() : nullptr,
                        want_k ? r.dk.data() : nullptr, want_v ? r.dv.data() : nullptr);
}

std::vector<double> minus(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = static_cast<double>(a[i]) - b[i];
  return d;
}

std::vector<float> as_float(const std::vector<double>& a) {
  return std::vector<float>(a.begin(), a.end());
}

void check_case(const Case& c) {
  const AttnShape& s = c.s;
  const Inputs in = make_inputs(s, 1000 + s.T * 7 + s.D);
  const Reference ref = reference(c, in);
  Rand r(77);
  const std::vector<float> pre_q = optest::random_vec(in.q.size(), r);
  const std::vector<float> pre_k = optest::random_vec(in.k.size(), r);
  const std::vector<float> pre_v = optest::random_vec(in.v.size(), r);

  enum Isa { kPortable, kAvx2, kAvx512 };
  struct Config {
    int threads;
    Isa isa;
  };
  std::vector<Config> configs = {{1, kPortable}, {2, kPortable}, {1, kAvx2},
                                 {2, kAvx2},     {1, kAvx512},   {2, kAvx512}};
  const char* isa_name[] = {"portable", "avx2", "avx512"};
  Result first_fwd[3];  // per kernel set
  for (const Config& cfg : configs) {
    CpuBackend be(cfg.threads, cfg.isa == kPortable);
    if (cfg.isa == kAvx2) be.set_avx512_attention(false);
    if (cfg.isa == kAvx2 && !be.use_avx2()) continue;
    if (cfg.isa == kAvx512 && !be.use_avx512_attention()) continue;
    const std::string tag = c.name + " [" + std::to_string(cfg.threads) + "t " + isa_name[cfg.isa] + "] ";
    Result f;
    run_forward(be, c, in, f);
    optest::expect_close(tag + "out", f.out, ref.out, 2e-5, 2e-6);
    optest::expect_close(tag + "lse", f.lse, ref.lse, 2e-6, 2e-6);
    // Padding queries: output exactly 0, lse 0.
    for (int b = 0; b < s.B; ++b)
      for (int t = 0; t < s.T; ++t) {
        if (c.seg[static_cast<size_t>(b) * s.T + t] >= 0) continue;
        for (int h = 0; h < s.Hq; ++h) {
          for (int d = 0; d < s.D; ++d) CHECK(f.out[qi(s, b, t, h, d)] == 0.0f);
          CHECK(f.lse[(static_cast<size_t>(b) * s.Hq + h) * s.T + t] == 0.0f);
        }
      }
    // The forward owns its output rows: same bits for any thread count.
    Result& first = first_fwd[cfg.isa];
    if (first.out.empty()) {
      first = f;
    } else {
      CHECK(optest::same_bits(f.out, first.out));
      CHECK(optest::same_bits(f.lse, first.lse));
    }

    Result g;
    run_backward(be, c, in, f, pre_q, pre_k, pre_v, true, true, true, g);
    // Accumulation: what was added on top of the pre-filled values.
    optest::expect_close(tag + "dq", as_float(minus(g.dq, pre_q)), ref.dq, 1e-4, 2e-5);
    optest::expect_close(tag + "dk", as_float(minus(g.dk, pre_k)), ref.dk, 1e-4, 2e-5);
    optest::expect_close(tag + "dv", as_float(minus(g.dv, pre_v)), ref.dv, 1e-4, 2e-5);

    // Padding queries get no gradient; padding keys receive none.
    for (int b = 0; b < s.B; ++b)
      for (int t = 0; t < s.T; ++t) {
        if (c.seg[static_cast<size_t>(b) * s.T + t] >= 0) continue;
        for (int h = 0; h < s.Hq; ++h)
          for (int d = 0; d < s.D; ++d) CHECK(g.dq[qi(s, b, t, h, d)] == pre_q[qi(s, b, t, h, d)]);
        for (int gh = 0; gh < s.Hkv; ++gh)
          for (int d = 0; d < s.D; ++d) {
            const size_t i = ki(s, b, s.P + t, gh, d);
            CHECK(g.dk[i] == pre_k[i]);
            CHECK(g.dv[i] == pre_v[i]);
          }
      }

    // Same thread count, same bits.
    Result g2;
    run_backward(be, c, in, f, pre_q, pre_k, pre_v, true, true, true, g2);
    CHECK(optest::same_bits(g.dq, g2.dq));
    CHECK(optest::same_bits(g.dk, g2.dk));
    CHECK(optest::same_bits(g.dv, g2.dv));

    // nullptr gradients: the others are computed exactly as before.
    Result only_q, only_kv, only_v;
    run_backward(be, c, in, f, pre_q, pre_k, pre_v, true, false, false, only_q);
    run_backward(be, c, in, f, pre_q, pre_k, pre_v, false, true, true, only_kv);
    run_backward(be, c, in, f, pre_q, pre_k, pre_v, false, false, true, only_v);
    CHECK(optest::same_bits(only_q.dq, g.dq));
    CHECK(optest::same_bits(only_q.dk, pre_k) && optest::same_bits(only_q.dv, pre_v));
    CHECK(optest::same_bits(only_kv.dk, g.dk) && optest::same_bits(only_kv.dv, g.dv));
    CHECK(optest::same_bits(only_kv.dq, pre_q));
    CHECK(optest::same_bits(only_v.dv, g.dv));
  }

  if (!c.fd) return;
  // Finite differences of L = sum(dout * out) through the fp32 forward.
  // Step 1e-2 on inputs of size ~1: truncation error ~1e-5 relative; the
  // fp32 noise of L is ~1e-7 * sqrt(outputs touched) / 2e-2 ~ 1e-5 absolute.
  CpuBackend be(2);
  Inputs x = in;
  Result f;
  auto loss = [&]() {
    be.attention_forward(s, x.q.data(), x.k.data(), x.v.data(), c.seg.data(), x.scale,
                         f.out.data(), f.lse.data());
    return optest::weighted_sum(x.dout, f.out.data());
  };
  run_forward(be, c, x, f);
  Result g;
  const std::vector<float> zq(x.q.size(), 0.0f), zk(x.k.size(), 0.0f);
  run_backward(be, c, x, f, zq, zk, zk, true, true, true, g);
  Rand pr(5);
  optest::expect_fd(c.name + " fd dq", x.q, g.dq, 24, 1e-2f, 2e-3, 2e-4, pr, loss);
  optest::expect_fd(c.name + " fd dk", x.k, g.dk, 24, 1e-2f, 2e-3, 2e-4, pr, loss);
  optest::expect_fd(c.name + " fd dv", x.v, g.dv, 24, 1e-2f, 2e-3, 2e-4, pr, loss);
}

std::vector<int32_t> segments(std::initializer_list<std::pair<int, int>> runs) {
  std::vector<int32_t> seg;
  for (auto [id, n] : runs) seg.insert(seg.end(), n, id);
  return seg;
}

void test_bad_shapes() {
  CpuBackend be(1);
  AttnShape s;
  s.B = 1, s.T = 4, s.Hq = 3, s.Hkv = 2, s.D = 8;
  std::vector<float> buf(1024, 0.0f);
  std::vector<int32_t> seg(4, 0);
  bool threw = false;
  try {
    be.attention_forward(s, buf.data(), buf.data(), buf.data(), seg.data(), 1.0f, buf.data(), buf.data());
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("multiple") != std::string::npos;
  }
  CHECK(threw);
}

}  // namespace

// A padding query whose q holds inf and NaN (whatever the layer wrote into
// a row the mask hides) must not reach any gradient: its row of scaled
// queries is 0, not 0 * inf = NaN, which dK += dS^T Qs would carry to every
// key (a reviewer's find). Every kernel set, 1 and 2 threads.
void test_padding_query_not_finite() {
  Case c;
  c.name = "padding q inf/NaN";
  c.s.B = 1, c.s.T = 8, c.s.P = 0, c.s.Hq = 2, c.s.Hkv = 1, c.s.D = 16;
  c.seg = {0, 0, 0, 0, 0, 0, -1, -1};
  Inputs in = make_inputs(c.s, 4242);
  for (int h = 0; h < c.s.Hq; ++h)
    for (int d = 0; d < c.s.D; ++d) {
      in.q[(6 * c.s.Hq + h) * c.s.D + d] = INFINITY;
      in.q[(7 * c.s.Hq + h) * c.s.D + d] = NAN;
    }
  for (int isa = 0; isa < 3; ++isa)
    for (int threads = 1; threads <= 2; ++threads) {
      CpuBackend be(threads, isa == 0);
      if (isa == 1) be.set_avx512_attention(false);
      if (isa == 1 && !be.use_avx2()) continue;
      if (isa == 2 && !be.use_avx512_attention()) continue;
      Result f;
      run_forward(be, c, in, f);
      std::vector<float> dq(in.q.size(), 0.0f), dk(in.k.size(), 0.0f), dv(in.v.size(), 0.0f);
      be.attention_backward(c.s, in.q.data(), in.k.data(), in.v.data(), c.seg.data(), in.scale, f.out.data(),
                            f.lse.data(), in.dout.data(), dq.data(), dk.data(), dv.data());
      for (float x : dk) CHECK(std::isfinite(x));
      for (float x : dv) CHECK(std::isfinite(x));
      for (int t = 0; t < 6; ++t)
        for (int i = 0; i < c.s.Hq * c.s.D; ++i) CHECK(std::isfinite(dq[t * c.s.Hq * c.s.D + i]));
    }
}

int main() {
  std::vector<Case> cases;
  {
    // GQA, two packed segments + trailing padding in row 0, leading padding in row 1.
    Case c;
    c.name = "gqa-packed";
    c.s.B = 2, c.s.T = 37, c.s.P = 0, c.s.Hq = 4, c.s.Hkv = 2, c.s.D = 20;
    c.seg = segments({{0, 20}, {1, 14}, {-1, 3}});
    auto row1 = segments({{-1, 3}, {7, 34}});
    c.seg.insert(c.seg.end(), row1.begin(), row1.end());
    c.fd = true;
    cases.push_back(c);
  }
  {
    // Prefix positions visible to both segments; odd head dim.
    Case c;
    c.name = "gqa-prefix";
    c.s.B = 1, c.s.T = 45, c.s.P = 5, c.s.Hq = 4, c.s.Hkv = 2, c.s.D = 17;
    c.seg = segments({{3, 25}, {4, 17}, {-1, 3}});
    c.fd = true;
    cases.push_back(c);
  }
  {
    // Several query and key blocks, prefix longer than one key block,
    // a padding gap between segments.
    Case c;
    c.name = "blocks";
    c.s.B = 1, c.s.T = 150, c.s.P = 70, c.s.Hq = 2, c.s.Hkv = 1, c.s.D = 64;
    c.seg = segments({{0, 81}, {-1, 4}, {2, 65}});
    cases.push_back(c);
  }
  {
    // Plain multi-head, one segment, head dim 128, T across 3 query blocks.
    Case c;
    c.name = "mha-128";
    c.s.B = 1, c.s.T = 70, c.s.P = 0, c.s.Hq = 3, c.s.Hkv = 3, c.s.D = 128;
    c.seg = segments({{0, 70}});
    cases.push_back(c);
  }
  {
    // Causal over five key blocks, three packed documents, GQA 4:1.
    Case c;
    c.name = "long";
    c.s.B = 1, c.s.T = 300, c.s.P = 0, c.s.Hq = 4, c.s.Hkv = 1, c.s.D = 32;
    c.seg = segments({{0, 130}, {1, 100}, {2, 65}, {-1, 5}});
    cases.push_back(c);
  }
  {
    // A single query (decode-like): P cached keys, T = 1.
    Case c;
    c.name = "decode";
    c.s.B = 2, c.s.T = 1, c.s.P = 9, c.s.Hq = 4, c.s.Hkv = 1, c.s.D = 16;
    c.seg = segments({{0, 1}, {0, 1}});
    c.fd = true;
    cases.push_back(c);
  }
  {
    // Long single segments: most key blocks are fully visible to their units
    // (no mask), the prefix is exactly one key block; row 1 has two segments,
    // so its blocks around the boundary are mixed and masked.
    Case c;
    c.name = "interior";
    c.s.B = 2, c.s.T = 200, c.s.P = 64, c.s.Hq = 6, c.s.Hkv = 2, c.s.D = 64;
    c.seg = segments({{0, 200}});
    auto row1 = segments({{5, 90}, {6, 110}});
    c.seg.insert(c.seg.end(), row1.begin(), row1.end());
    cases.push_back(c);
  }
  {
    // Generation with GQA 3:1: a padding row, 100 cached keys (two key
    // blocks); with 2 threads each kv head's three query heads are split.
    Case c;
    c.name = "decode-gqa";
    c.s.B = 3, c.s.T = 1, c.s.P = 100, c.s.Hq = 6, c.s.Hkv = 2, c.s.D = 24;
    c.seg = {0, -1, 4};
    cases.push_back(c);
  }
  {
    // One kv head, more query heads than runs can split evenly (6 heads,
    // runs of 3 with 1 thread; runs of 2 with 2 threads, a fourth run empty).
    Case c;
    c.name = "decode-one-kv";
    c.s.B = 1, c.s.T = 1, c.s.P = 37, c.s.Hq = 6, c.s.Hkv = 1, c.s.D = 32;
    c.seg = {2};
    c.fd = true;
    cases.push_back(c);
  }
  for (const Case& c : cases) check_case(c);
  test_bad_shapes();
  test_padding_query_not_finite();
  return pstest::finish("test_attention");
}
