// The optimizer step through the engine: AdamW and SGD against a float64
// transcription of torch.optim (with clip_grad_norm_ and the HF Trainer's
// no-decay rule for 1-D tensors), state save/restore, and training that
// actually learns a toy sequence.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include "check.h"
#include "error.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

std::unique_ptr<ps::Engine> engine(const ps::ModelSpec& s, const Weights& w) {
  ps::EngineOptions o;
  o.threads = 2;
  o.seed = 3;
  auto e = std::make_unique<ps::Engine>(s, o);
  set_all(*e, w);
  return e;
}

std::vector<ps::ParameterInfo> trainables(ps::Engine& e) {
  std::vector<ps::ParameterInfo> out;
  for (const auto& p : e.parameters())
    if (p.trainable) out.push_back(p);
  return out;
}

struct RefState {
  std::map<std::string, std::vector<double>> m, v;
  // A bound on the float rounding an engine's m has gathered: per step the
  // magnitudes rounded (beta1 |m|, (1 - beta1) |g| and the new |m|), carried
  // on with beta1 as the error itself is. m of terms that cancel is far
  // smaller than the terms, so its float error is relative to them, not to m.
  std::map<std::string, std::vector<double>> m_scale;
};

// One torch step in float64 from the engine's current fp32 params and grads.
// Returns the grad norm; fills want[name] with the expected new params.
double reference_step(ps::Engine& e, const ps::OptimizerStep& o, int t, RefState& st,
                      std::map<std::string, std::vector<double>>& want) {
  const auto params = trainables(e);
  std::map<std::string, std::vector<float>> g, p;
  double sq = 0;
  for (const auto& info : params) {
    g[info.name] = e.get_gradient(info.name);
    p[info.name] = e.get_tensor(info.name);
    for (float x : g[info.name]) sq += static_cast<double>(x) * x;
  }
  const double norm = std::sqrt(sq);
  double coef = 1.0;
  if (o.max_grad_norm > 0) coef = std::min(1.0, o.max_grad_norm / (norm + 1e-6));  // clip_grad_norm_
  for (const auto& info : params) {
    const bool decay = info.shape.size() > 1;  // HF Trainer: no decay for biases and norm weights
    const double wd = decay ? o.weight_decay : 0.0;
    auto& m = st.m[info.name];
    auto& v = st.v[info.name];
    m.resize(g[info.name].size(), 0.0);
    v.resize(g[info.name].size(), 0.0);
    auto& m_scale = st.m_scale[info.name];
    m_scale.resize(g[info.name].size(), 0.0);
    std::vector<double>& out = want[info.name];
    out.assign(p[info.name].begin(), p[info.name].end());
    for (size_t i = 0; i < out.size(); ++i) {
      const double gi = g[info.name][i] * coef;
      if (o.kind == ps::OptimizerStep::Kind::Sgd) {
        out[i] -= o.lr * (gi + wd * out[i]);
        continue;
      }
      out[i] *= 1.0 - o.lr * wd;  // torch.optim.AdamW: decoupled decay first
      const double m_before = std::fabs(m[i]);
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      m_scale[i] = o.beta1 * (m_scale[i] + m_before) + (1 - o.beta1) * std::fabs(gi) + std::fabs(m[i]);
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      const double bc1 = 1 - std::pow(static_cast<double>(o.beta1), t);
      const double bc2 = 1 - std::pow(static_cast<double>(o.beta2), t);
      out[i] -= (o.lr / bc1) * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + o.eps);
    }
  }
  return norm;
}

void compare(ps::Engine& e, const std::map<std::string, std::vector<double>>& want, double lr) {
  for (const auto& kv : want) {
    const std::vector<float> got = e.get_tensor(kv.first);
    for (size_t i = 0; i < got.size(); ++i)
      // fp32 update arithmetic: ~1e-7 relative of the param and of the step (<= lr).
      CHECK_CLOSE(got[i], kv.second[i], 1e-6, 1e-5 * lr);
  }
}

void run_steps(bool full, ps::OptimizerStep::Kind kind) {
  const ps::ModelSpec s = spec(full ? Variant::Qwen2 : Variant::Llama);
  const Weights w = random_weights(s, 201);
  auto e = engine(s, w);
  if (full) {
    e->setup_full();
  } else {
    e->setup_lora(all_targets_lora(2, 4.0f, 0.1f, 5));
    randomize_lora_b(*e, 0.1, 6);
  }
  ps::OptimizerStep o;
  o.kind = kind;
  o.lr = 0.01f;
  o.beta1 = 0.8f;
  o.beta2 = 0.95f;
  o.eps = 1e-6f;
  o.weight_decay = 0.1f;
  RefState st;
  double first_norm = 0;
  for (int t = 1; t <= 3; ++t) {
    const ps::Batch b = ragged_batch(10, s.vocab_size, 300 + t);
    e->forward_backward(b, static_cast<float>(1.0 / counted_tokens(b)));
    // Step 2 clips (threshold half the first norm), steps 1 and 3 do not.
    o.max_grad_norm = t == 2 ? static_cast<float>(first_norm / 2) : t == 3 ? 1e6f : 0.0f;
    std::map<std::string, std::vector<double>> want;
    const double want_norm = reference_step(*e, o, t, st, want);
    if (t == 1) first_norm = want_norm;
    const double norm = e->optimizer_step(o);
    CHECK_CLOSE(norm, want_norm, 1e-12, 0);  // both sum float32 squares in double
    compare(*e, want, o.lr);
    for (const auto& p : trainables(*e))
      for (float g : e->get_gradient(p.name)) CHECK(g == 0.0f);  // zeroed after the step
  }
  const ps::OptimizerState state = e->get_optimizer_state();
  CHECK(state.step == 3);
  if (kind == ps::OptimizerStep::Kind::AdamW) {
    CHECK(state.tensors.size() == trainables(*e).size());
    for (const auto& t : state.tensors)
      for (size_t i = 0; i < t.m.size(); ++i) {
        // a few float roundings (2^-24 each) of the magnitudes m was summed from
        CHECK_CLOSE(t.m[i], st.m[t.name][i], 1e-5, 4 * 0x1p-24 * st.m_scale[t.name][i] + 1e-12);
        CHECK_CLOSE(t.v[i], st.v[t.name][i], 1e-5, 1e-12);
      }
  } else {
    CHECK(state.tensors.empty());
  }
}

// Restoring the optimizer state and parameters resumes the exact trajectory.
void test_state_round_trip() {
  const ps::ModelSpec s = spec(Variant::Tied);
  const Weights w = random_weights(s, 202);
  const ps::Batch b = random_batch(2, 9, s.vocab_size, 4);
  ps::OptimizerStep o;
  o.lr = 5e-3f;
  auto a = engine(s, w);
  a->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
  for (int i = 0; i < 2; ++i) {
    a->forward_backward(b, 0.1f);
    a->optimizer_step(o);
  }
  auto c = engine(s, w);
  c->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 77));  // different init, overwritten below
  for (const auto& p : trainables(*a)) {
    const auto v = a->get_tensor(p.name);
    c->set_tensor(p.name, v.data(), v.size());
  }
  c->set_optimizer_state(a->get_optimizer_state());
  for (auto* e : {a.get(), c.get()}) {
    e->forward_backward(b, 0.1f);
    e->optimizer_step(o);
  }
  for (const auto& p : trainables(*a)) {
    const auto x = a->get_tensor(p.name), y = c->get_tensor(p.name);
    CHECK(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0);
  }
  ps::OptimizerState bad = a->get_optimizer_state();
  bad.tensors[0].m.pop_back();
  try {
    c->set_optimizer_state(bad);
    pstest::fail(__FILE__, __LINE__, "a state of the wrong size must be refused");
  } catch (const ps::Error& err) {
    CHECK(std::string(err.what()).find(bad.tensors[0].name) != std::string::npos);
  }
}

// A few steps learn a repeating sequence: the loss falls well below its start.
void test_learns_toy_sequence(bool full) {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 203);
  auto e = engine(s, w);
  if (full)
    e->setup_full();
  else
    e->setup_lora(all_targets_lora(4, 8.0f, 0.0f, 5));
  ps::Batch b = random_batch(2, 16, s.vocab_size, 5);
  for (size_t i = 0; i < b.input_ids.size(); ++i) b.input_ids[i] = b.labels[i] = static_cast<int>((i * 7) % 5 + 3);
  ps::OptimizerStep o;
  o.lr = full ? 3e-3f : 2e-2f;
  o.max_grad_norm = 1.0f;
  const double tokens = static_cast<double>(counted_tokens(b));
  const double first = e->evaluate(b).loss_sum / tokens;
  for (int i = 0; i < 30; ++i) {
    e->forward_backward(b, static_cast<float>(1.0 / tokens));
    e->optimizer_step(o);
  }
  const double last = e->evaluate(b).loss_sum / tokens;
  std::printf("  %s: loss %.4f -> %.4f\n", full ? "full" : "lora", first, last);
  CHECK(last < 0.25 * first);
}

}  // namespace

int main() {
  try {
    run_steps(false, ps::OptimizerStep::Kind::AdamW);
    run_steps(true, ps::OptimizerStep::Kind::AdamW);
    run_steps(false, ps::OptimizerStep::Kind::Sgd);
    run_steps(true, ps::OptimizerStep::Kind::Sgd);
    test_state_round_trip();
    test_learns_toy_sequence(false);
    test_learns_toy_sequence(true);
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_model_optimizer");
}
