// The pieces prefix tuning adds below the model, against float64 references
// written from PEFT's semantics:
//  - one layer's attention over [shared prefix; real keys]: prefix_concat,
//    attention_forward with P = nvt, attention_backward, prefix_split_grad.
//    The prefix is ONE table shared by every batch row, so its gradient is
//    the sum over rows of what attention_backward accumulates into the
//    leading key/value positions j < P; every query (both packed sequences)
//    sees every prefix position, padding queries see nothing and give nothing.
//    Checked against a float64 forward/backward and by central differences
//    on the table itself.
//  - PEFT's prefix_projection MLP (Linear -> tanh -> Linear) forward against
//    float64, its backward by central differences, the inits' distributions.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "methods/prefix_tuning.h"
#include "op_test_util.h"

using optest::Rand;

namespace {

struct Layer {
  int B, T, P, Hq, Hkv, D;
  int Dkv() const { return Hkv * D; }
};

// float64 attention of real queries over [prefix; real keys] of their own row.
// Returns out [B, T, Hq*D].
std::vector<double> ref_attention(const Layer& s, const std::vector<int32_t>& seg, const std::vector<float>& q,
                                  const std::vector<float>& pk, const std::vector<float>& pv, size_t pstride,
                                  const std::vector<float>& k, const std::vector<float>& v) {
  const int Dq = s.Hq * s.D, Dkv = s.Dkv(), group = s.Hq / s.Hkv;
  std::vector<double> out(static_cast<size_t>(s.B) * s.T * Dq, 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.D));
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t) {
      const int qi = b * s.T + t;
      if (seg[qi] < 0) continue;
      for (int h = 0; h < s.Hq; ++h) {
        const int g = h / group;
        std::vector<double> sc;
        std::vector<const float*> vals;
        auto key = [&](const float* kk, const float* vv) {
          double dot = 0;
          for (int d = 0; d < s.D; ++d) dot += static_cast<double>(q[qi * Dq + h * s.D + d]) * kk[g * s.D + d];
          sc.push_back(dot * scale);
          vals.push_back(vv + g * s.D);
        };
        for (int i = 0; i < s.P; ++i) key(&pk[i * pstride], &pv[i * pstride]);  // prefix: always visible
        for (int j = 0; j <= t; ++j)
          if (seg[b * s.T + j] == seg[qi]) key(&k[(b * s.T + j) * Dkv], &v[(b * s.T + j) * Dkv]);
        double mx = -1e300, sum = 0;
        for (double x : sc) mx = std::max(mx, x);
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (size_t j = 0; j < sc.size(); ++j)
          for (int d = 0; d < s.D; ++d) out[qi * Dq + h * s.D + d] += sc[j] / sum * vals[j][d];
      }
    }
  return out;
}

void test_prefix_attention(const Layer& s, const std::vector<int32_t>& seg, int threads) {
  ps::CpuBackend be(threads);
  Rand r(17 + s.P);
  const int Dq = s.Hq * s.D, Dkv = s.Dkv();
  // The table holds 2 layers' keys and values: [P, 2 * 2 * Dkv]; this layer is layer 1.
  const size_t stride = static_cast<size_t>(4) * Dkv;
  std::vector<float> table = optest::random_vec(static_cast<size_t>(s.P) * stride, r, -1.5f, 1.5f);
  const size_t koff = 2 * static_cast<size_t>(Dkv), voff = 3 * static_cast<size_t>(Dkv);
  const size_t nq = static_cast<size_t>(s.B) * s.T * Dq, nkv = static_cast<size_t>(s.B) * s.T * Dkv;
  std::vector<float> q = optest::random_vec(nq, r, -1.5f, 1.5f), k = optest::random_vec(nkv, r, -1.5f, 1.5f),
                     v = optest::random_vec(nkv, r), G = optest::random_vec(nq, r);
  const size_t ncat = static_cast<size_t>(s.B) * (s.P + s.T) * Dkv;
  std::vector<float> kc(ncat), vc(ncat), out(nq), lse(static_cast<size_t>(s.B) * s.Hq * s.T);
  ps::AttnShape shape;
  shape.B = s.B, shape.T = s.T, shape.P = s.P, shape.Hq = s.Hq, shape.Hkv = s.Hkv, shape.D = s.D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.D));
  auto forward = [&](const std::vector<float>& tab) {
    ps::prefix_concat(be, tab.data() + koff, stride, s.P, k.data(), s.B, s.T, Dkv, kc.data());
    ps::prefix_concat(be, tab.data() + voff, stride, s.P, v.data(), s.B, s.T, Dkv, vc.data());
    be.attention_forward(shape, q.data(), kc.data(), vc.data(), seg.data(), scale, out.data(), lse.data());
  };
  forward(table);
  const std::string tag = "P=" + std::to_string(s.P) + " B=" + std::to_string(s.B) + " " + std::to_string(threads) + "t ";

  // Forward: PEFT's past_key_values semantics, the prefix keys as stored.
  std::vector<float> pk(table.begin() + koff, table.end()), pv(table.begin() + voff, table.end());
  const std::vector<double> want = ref_attention(s, seg, q, pk, pv, stride, k, v);
  optest::expect_close(tag + "out", out, want, 2e-5, 2e-6);

  // Backward: dtable accumulates (pre-filled with 1s), real dk/dv are overwritten.
  std::vector<float> dq(nq, 0.0f), dkc(ncat, 0.0f), dvc(ncat, 0.0f);
  be.attention_backward(shape, q.data(), kc.data(), vc.data(), seg.data(), scale, out.data(), lse.data(), G.data(),
                        dq.data(), dkc.data(), dvc.data());
  std::vector<float> dtable(table.size(), 1.0f), dk(nkv, 7.0f), dv(nkv, 7.0f);
  ps::prefix_split_grad(be, dkc.data(), s.P, s.B, s.T, Dkv, dk.data(), dtable.data() + koff, stride);
  ps::prefix_split_grad(be, dvc.data(), s.P, s.B, s.T, Dkv, dv.data(), dtable.data() + voff, stride);
  // Columns of the table that belong to layer 0 are untouched.
  for (int i = 0; i < s.P; ++i)
    for (size_t c = 0; c < koff; ++c) CHECK(dtable[i * stride + c] == 1.0f);
  // The prefix gradient is non-zero (every real query attends to it).
  double gsum = 0;
  for (int i = 0; i < s.P; ++i)
    for (size_t c = koff; c < stride; ++c) gsum += std::fabs(dtable[i * stride + c] - 1.0f);
  CHECK(gsum > 1e-3);

  // Central differences of L = sum(G * out) on table entries (both slices) and on real k.
  auto loss_table = [&]() {
    forward(table);
    return optest::weighted_sum(G, out.data());
  };
  std::vector<float> dtab_only(table.size());
  for (size_t i = 0; i < table.size(); ++i) dtab_only[i] = dtable[i] - 1.0f;
  Rand pr(3);
  optest::expect_fd(tag + "fd dtable", table, dtab_only, 40, 1e-2f, 3e-3, 3e-4, pr, loss_table);
  auto loss_k = [&]() {
    forward(table);
    return optest::weighted_sum(G, out.data());
  };
  optest::expect_fd(tag + "fd dk", k, dk, 20, 1e-2f, 3e-3, 3e-4, pr, loss_k);
  optest::expect_fd(tag + "fd dv", v, dv, 20, 1e-2f, 3e-3, 3e-4, pr, loss_k);
  // Padding queries get no gradient and their keys receive none.
  for (int b = 0; b < s.B; ++b)
    for (int t = 0; t < s.T; ++t)
      if (seg[b * s.T + t] < 0) {
        for (int c = 0; c < Dq; ++c) CHECK(dq[(b * s.T + t) * Dq + c] == 0.0f);
        for (int c = 0; c < Dkv; ++c) CHECK(dk[(b * s.T + t) * Dkv + c] == 0.0f);
      }
}

// PEFT's prefix_projection MLP against float64, its backward by central differences.
void test_projection() {
  ps::CpuBackend be(2);
  ps::ModelDims d;
  d.L = 2, d.Hkv = 2, d.hd = 4, d.Dkv = 8, d.D = 16, d.Hq = 4, d.Dq = 16;
  ps::PrefixTuningOptions o;
  o.num_virtual_tokens = 5;
  o.projection = true;
  o.encoder_hidden_size = 12;
  o.seed = 42;
  ps::PrefixTuning pt(be, d, o);
  const int nvt = 5, enc = 12, td = 8, width = 2 * 2 * 8;
  CHECK(pt.width() == width && pt.token_dim() == td && pt.projection());
  CHECK(pt.params() == ps::prefix_tuning_params(d, nvt, enc));
  CHECK(pt.params() == nvt * td + enc * td + enc + width * enc + width);
  const auto& t = pt.trainables();
  CHECK(t.size() == 5);
  CHECK(t[0].name == "prefix_encoder.embedding.weight" && t[0].shape == std::vector<int64_t>({nvt, td}));
  CHECK(t[1].name == "prefix_encoder.transform.0.weight" && t[1].shape == std::vector<int64_t>({enc, td}));
  CHECK(t[2].name == "prefix_encoder.transform.0.bias" && !t[2].decay);
  CHECK(t[3].name == "prefix_encoder.transform.2.weight" && t[3].shape == std::vector<int64_t>({width, enc}));
  CHECK(t[4].name == "prefix_encoder.transform.2.bias" && t[4].shape == std::vector<int64_t>({width}));
  auto host = [&](const ps::TrainableTensor& x) { return std::vector<float>(x.value, x.value + x.numel); };
  // Inits: Linear weights and biases inside +-1/sqrt(fan_in); the embedding ~ N(0, 1).
  for (int k : {1, 2}) for (float x : host(t[k])) CHECK(std::fabs(x) <= 1.0 / std::sqrt(td));
  for (int k : {3, 4}) for (float x : host(t[k])) CHECK(std::fabs(x) <= 1.0 / std::sqrt(enc));
  {
    ps::PrefixTuningOptions big = o;
    big.projection = false;
    big.num_virtual_tokens = 200;
    ps::PrefixTuning plain(be, d, big);  // 200 x 32 = 6400 N(0,1) values
    std::vector<float> v = host(plain.trainables()[0]);
    double m = 0, m2 = 0;
    for (float x : v) m += x, m2 += static_cast<double>(x) * x;
    m /= v.size();
    m2 /= v.size();
    CHECK(std::fabs(m) < 0.05 && std::fabs(m2 - 1.0) < 0.08);
    CHECK(plain.trainables()[0].name == "prefix_embeddings");
  }

  std::vector<float> hidden(nvt * enc), table(nvt * width);
  pt.project(hidden.data(), table.data());
  const std::vector<float> E = host(t[0]), W1 = host(t[1]), b1 = host(t[2]), W2 = host(t[3]), b2 = host(t[4]);
  std::vector<double> want(nvt * width);
  for (int i = 0; i < nvt; ++i) {
    std::vector<double> h(enc);
    for (int j = 0; j < enc; ++j) {
      double a = b1[j];
      for (int c = 0; c < td; ++c) a += static_cast<double>(W1[j * td + c]) * E[i * td + c];
      h[j] = std::tanh(a);
    }
    for (int o2 = 0; o2 < width; ++o2) {
      double a = b2[o2];
      for (int j = 0; j < enc; ++j) a += static_cast<double>(W2[o2 * enc + j]) * h[j];
      want[i * width + o2] = a;
    }
  }
  optest::expect_close("projection table", table, want, 1e-5, 1e-6);
  const std::vector<float> ht = pt.host_table();
  CHECK(optest::same_bits(ht, table));

  // Backward of L = sum(G * table) against central differences on every tensor.
  Rand r(9);
  const std::vector<float> G = optest::random_vec(table.size(), r);
  std::vector<float> dhidden(nvt * enc);
  pt.project_backward(hidden.data(), G.data(), dhidden.data());
  for (int k = 0; k < 5; ++k) {
    std::vector<float> x = host(t[k]);
    const std::vector<float> g(t[k].grad, t[k].grad + t[k].numel);
    auto loss = [&]() {
      be.upload(t[k].value, x.data(), x.size() * sizeof(float));
      std::vector<float> hh(nvt * enc), tt(nvt * width);
      pt.project(hh.data(), tt.data());
      return optest::weighted_sum(G, tt.data());
    };
    optest::expect_fd("projection fd " + t[k].name, x, g, 16, 1e-2f, 2e-3, 2e-4, r, loss);
    be.upload(t[k].value, x.data(), x.size() * sizeof(float));
  }
}

void test_errors() {
  ps::CpuBackend be(1);
  ps::ModelDims d;
  d.L = 2, d.Hkv = 2, d.hd = 4, d.Dkv = 8, d.D = 16;
  ps::PrefixTuningOptions o;
  o.num_virtual_tokens = 0;
  CHECK(optest::throws_error([&] { ps::PrefixTuning p(be, d, o); }));
  o.num_virtual_tokens = 4;
  o.projection = true;
  o.encoder_hidden_size = 0;
  CHECK(optest::throws_error([&] { ps::PrefixTuning p(be, d, o); }));
}

}  // namespace

int main() {
  // Two rows: row 0 packs two sequences then padding, row 1 leads with padding.
  Layer s{2, 11, 3, 4, 2, 6};
  std::vector<int32_t> seg = {0, 0, 0, 0, 1, 1, 1, 1, 1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int threads : {1, 2}) test_prefix_attention(s, seg, threads);
  // A prefix longer than one key block of the kernel, multi-head (Hkv = Hq).
  Layer big{1, 40, 70, 2, 2, 16};
  std::vector<int32_t> seg1(40, 0);
  test_prefix_attention(big, seg1, 2);
  test_projection();
  test_errors();
  return pstest::finish("test_prefix_tuning_ops");
}
