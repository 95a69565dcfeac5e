// RoPE tables against the formulas of transformers' modeling_rope_utils.py,
// transcribed here in float64 (default, "linear", "llama3" scaling), and
// table entries against cos/sin of the fp32 angle float(pos) * inv_freq that
// LlamaRotaryEmbedding forms.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "model/spec.h"
#include "op_test_util.h"
#include "rope_tables.h"

using optest::throws_error;

namespace {

const double kPi = 3.14159265358979323846;

ps::ModelSpec llama_spec(int head_dim, float theta) {
  ps::ModelSpec s;
  s.hidden_size = head_dim * 4;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = head_dim;
  s.rope_theta = theta;
  return s;
}

// inv_freq[i] = 1 / theta^(2i / D)
std::vector<double> default_inv_freq(double theta, int D) {
  std::vector<double> f(D / 2);
  for (int i = 0; i < D / 2; ++i) f[i] = 1.0 / std::pow(theta, 2.0 * i / D);
  return f;
}

// transformers' _compute_llama3_parameters, per frequency, in float64.
std::vector<double> llama3_inv_freq(double theta, int D, double factor, double low_freq_factor,
                                    double high_freq_factor, double old_context_len) {
  std::vector<double> f = default_inv_freq(theta, D);
  const double low_freq_wavelen = old_context_len / low_freq_factor;
  const double high_freq_wavelen = old_context_len / high_freq_factor;
  for (double& x : f) {
    const double wavelen = 2 * kPi / x;
    if (wavelen < high_freq_wavelen) continue;  // high frequencies: unchanged
    if (wavelen > low_freq_wavelen) {           // low frequencies: divided by factor
      x /= factor;
      continue;
    }
    const double smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
    x = (1 - smooth) * x / factor + smooth * x;
  }
  return f;
}

// |got - want| within `ulps` units in the last place of float at want.
bool within_ulps(float got, double want, double ulps) {
  if (want == 0.0) return got == 0.0f;
  const double ulp = std::ldexp(1.0, std::ilogb(static_cast<float>(want)) - 23);
  return std::fabs(got - want) <= ulps * ulp;
}

void check_inv_freq(const std::string& what, const std::vector<float>& got, const std::vector<double>& want,
                    double ulps) {
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (!within_ulps(got[i], want[i], ulps))
      pstest::fail(__FILE__, __LINE__,
                   what + " inv_freq[" + std::to_string(i) + "] = " + std::to_string(got[i]) + ", want " +
                       std::to_string(want[i]));
}

// Entries (pos, i) of the tables: cos/sin of the fp32 angle made from the
// spec's inv_freq (to an ulp), and close to the float64 angle: the fp32 angle
// is off by inv_ulps of inv_freq (as check_inv_freq allows) plus half an ulp
// of the product.
void check_tables(const std::string& what, const ps::ModelSpec& spec, const std::vector<double>& inv_ref,
                  double inv_ulps) {
  const int D = spec.head_dim, half = D / 2, max_pos = 9000;
  std::vector<float> cos(static_cast<size_t>(max_pos) * half), sin(cos.size());
  ps::build_rope_tables(spec, max_pos, cos.data(), sin.data());
  const std::vector<float> inv = ps::rope_inv_freq(spec);
  for (int pos : {0, 1, 2, 17, 1000, 4095, 8191, 8999})
    for (int i : {0, 1, half / 3, half / 2, half - 1}) {
      const size_t at = static_cast<size_t>(pos) * half + i;
      const float angle = static_cast<float>(pos) * inv[i];  // HF: inv_freq @ position_ids in fp32
      CHECK(within_ulps(cos[at], std::cos(static_cast<double>(angle)), 1) ||
            std::fabs(cos[at] - std::cos(static_cast<double>(angle))) < 1e-9);
      CHECK(within_ulps(sin[at], std::sin(static_cast<double>(angle)), 1) ||
            std::fabs(sin[at] - std::sin(static_cast<double>(angle))) < 1e-9);
      const double exact = pos * inv_ref[i];
      const double angle_err = exact * (inv_ulps + 0.5) * std::ldexp(1.0, -23) + 1e-7;
      if (std::fabs(cos[at] - std::cos(exact)) > angle_err + 1e-7 ||
          std::fabs(sin[at] - std::sin(exact)) > angle_err + 1e-7)
        pstest::fail(__FILE__, __LINE__,
                     what + " table at pos " + std::to_string(pos) + " i " + std::to_string(i) +
                         " is off the float64 angle by more than its rounding");
    }
  CHECK(cos[0] == 1.0f && sin[0] == 0.0f);  // position 0: no rotation
}

void test_default() {
  const ps::ModelSpec s = llama_spec(64, 10000.0f);
  check_inv_freq("default", ps::rope_inv_freq(s), default_inv_freq(10000.0, 64), 2);
  check_tables("default", s, default_inv_freq(10000.0, 64), 2);
  // head_dim 0 falls back to hidden_size / num_heads.
  ps::ModelSpec s0 = s;
  s0.head_dim = 0;
  CHECK(ps::rope_inv_freq(s0) == ps::rope_inv_freq(s));
  // Qwen-style theta 1e6, head dim 128.
  const ps::ModelSpec q = llama_spec(128, 1000000.0f);
  check_inv_freq("theta 1e6", ps::rope_inv_freq(q), default_inv_freq(1e6, 128), 2);
  check_tables("theta 1e6", q, default_inv_freq(1e6, 128), 2);
}

void test_linear() {
  ps::ModelSpec s = llama_spec(64, 10000.0f);
  s.rope_scaling = ps::RopeScaling::Linear;
  s.rope_factor = 4.0f;
  std::vector<double> want = default_inv_freq(10000.0, 64);
  for (double& f : want) f /= 4.0;
  check_inv_freq("linear", ps::rope_inv_freq(s), want, 2);
  check_tables("linear", s, want, 2);
  // Dividing inv_freq by 4 is positions / 4: entry (4p, i) equals the unscaled (p, i).
  const ps::ModelSpec base = llama_spec(64, 10000.0f);
  const int n = 64, half = 32;
  std::vector<float> c4(static_cast<size_t>(4 * n) * half), s4(c4.size()), c1(static_cast<size_t>(n) * half), s1(c1.size());
  ps::build_rope_tables(s, 4 * n, c4.data(), s4.data());
  ps::build_rope_tables(base, n, c1.data(), s1.data());
  bool same = true;
  for (int p = 0; p < n; ++p)
    for (int i = 0; i < half; ++i)
      same &= c4[static_cast<size_t>(4 * p) * half + i] == c1[static_cast<size_t>(p) * half + i] &&
              s4[static_cast<size_t>(4 * p) * half + i] == s1[static_cast<size_t>(p) * half + i];
  CHECK(same);
}

void test_llama3() {
  // Llama 3.1: factor 8, low 1, high 4, original context 8192, theta 500000, head dim 128.
  ps::ModelSpec s = llama_spec(128, 500000.0f);
  s.rope_scaling = ps::RopeScaling::Llama3;
  s.rope_factor = 8.0f;
  s.rope_low_freq_factor = 1.0f;
  s.rope_high_freq_factor = 4.0f;
  s.rope_original_max_position = 8192;
  const std::vector<double> want = llama3_inv_freq(500000.0, 128, 8.0, 1.0, 4.0, 8192.0);
  const std::vector<float> got = ps::rope_inv_freq(s);
  // The smoothing band is computed in fp32 by transformers too: a few ulps.
  check_inv_freq("llama3", got, want, 4);
  check_tables("llama3", s, want, 4);
  // All three bands occur for this config: unchanged, smoothed, divided by 8.
  const std::vector<double> plain = default_inv_freq(500000.0, 128);
  int high = 0, mid = 0, low = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double wavelen = 2 * kPi / plain[i];
    if (wavelen < 2048) {
      ++high;
      CHECK(within_ulps(got[i], plain[i], 2));
    } else if (wavelen > 8192) {
      ++low;
      CHECK(within_ulps(got[i], plain[i] / 8, 2));
    } else {
      ++mid;
      CHECK(got[i] < plain[i] && got[i] > plain[i] / 8);
    }
  }
  CHECK(high > 0 && mid > 0 && low > 0);
}

void test_bad_config() {
  ps::ModelSpec odd = llama_spec(63, 10000.0f);
  CHECK(throws_error([&] { ps::rope_inv_freq(odd); }));
  ps::ModelSpec bad = llama_spec(64, 10000.0f);
  bad.rope_scaling = ps::RopeScaling::Llama3;
  bad.rope_high_freq_factor = 1.0f;  // must exceed low_freq_factor
  CHECK(throws_error([&] { ps::rope_inv_freq(bad); }));
  ps::ModelSpec ok = llama_spec(64, 10000.0f);
  std::vector<float> c(32), s(32);
  CHECK(throws_error([&] { ps::build_rope_tables(ok, 0, c.data(), s.data()); }));
}

}  // namespace

int main() {
  test_default();
  test_linear();
  test_llama3();
  test_bad_config();
  return pstest::finish("test_rope_tables");
}
