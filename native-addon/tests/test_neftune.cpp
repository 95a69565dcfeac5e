// NEFTune through the engine on tiny random models:
//  - the noise op: every value within (-1, 1) times the magnitude, mean 0 and
//    variance 1/3 as a uniform's, the same bits for any thread count, another
//    key another noise;
//  - a training pass's loss equals the float64 reference's with the noise
//    alpha / sqrt(T * D) (computed here) times the op's values added to the
//    input embeddings, for LoRA and full fine-tuning, and for prompt tuning
//    on the real tokens only (L their count); evaluation adds none;
//    alpha 0 is the plain pass bit for bit;
//  - gradients against finite differences with the noise in place (fixed by
//    the step, as dropout's masks are);
//  - a negative or non-finite alpha is refused.
#include <cmath>
#include <cstring>
#include <memory>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "fd_check.h"
#include "methods/neftune.h"
#include "reference_llama.h"
#include "reference_prompt_learning.h"
#include "rng.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

std::unique_ptr<ps::Engine> engine(const ps::ModelSpec& s, const Weights& w, float alpha, int threads = 2,
                                   uint64_t seed = 7) {
  ps::EngineOptions o;
  o.threads = threads;
  o.seed = seed;
  o.neftune_alpha = alpha;
  auto e = std::make_unique<ps::Engine>(s, o);
  set_all(*e, w);
  return e;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void test_noise_op() {
  const size_t n = 1 << 20;
  const float mag = 0.25f;
  ps::CpuBackend two(2), one(1);
  std::vector<float> x(n, 0.0f), y(n, 0.0f), z(n, 0.0f);
  two.add_uniform_noise(x.data(), n, mag, 42);
  one.add_uniform_noise(y.data(), n, mag, 42);
  CHECK(same_bits(x, y));
  two.add_uniform_noise(z.data(), n, mag, 43);
  CHECK(!same_bits(x, z));
  double sum = 0, sq = 0, lo = 0, hi = 0;
  for (float v : x) {
    const double u = v / mag;
    sum += u;
    sq += u * u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  CHECK(lo > -1.0 && hi < 1.0 && lo < -0.999 && hi > 0.999);  // fills (-1, 1)
  CHECK(std::fabs(mean) < 4 * std::sqrt(1.0 / 3.0 / n));     // within 4 sigma of 0
  CHECK_CLOSE(var, 1.0 / 3.0, 5e-3, 0);
  // added, not written: on top of a value
  std::vector<float> base(n, 1.5f);
  two.add_uniform_noise(base.data(), n, mag, 42);
  for (size_t i = 0; i < n; i += 4099) CHECK(base[i] == 1.5f + x[i]);
}

// The noise the engine adds at dropout counter `counter`: the op on zeros with the step's key.
std::vector<double> expected_noise(const ps::ModelSpec& s, const ps::Batch& b, float alpha, uint64_t seed,
                                   uint64_t counter) {
  const int D = s.hidden_size;
  const double mag = alpha / std::sqrt(static_cast<double>(b.seq_len) * D);  // alpha / sqrt(L * D)
  std::vector<float> z(static_cast<size_t>(b.batch_size) * b.seq_len * D, 0.0f);
  ps::CpuBackend be(1);
  be.add_uniform_noise(z.data(), z.size(), static_cast<float>(mag), ps::neftune_key(ps::mix_key({seed, counter})));
  std::vector<double> out(z.begin(), z.end());
  double biggest = 0;
  for (double v : out) biggest = std::max(biggest, std::fabs(v));
  CHECK(biggest < mag && biggest > 0.99 * mag);
  return out;
}

void test_pass_matches_reference(Variant v, bool full) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 11);
  const ps::Batch b = ragged_batch(10, s.vocab_size, 4);
  const float alpha = 15.0f;  // large on this small model, so the noise moves the loss well past the tolerance
  auto e = engine(s, w, alpha);
  auto plain = engine(s, w, 0.0f);
  if (full) {
    e->setup_full();
    plain->setup_full();
  } else {
    e->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    plain->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    randomize_lora_b(*e, 0.2, 6);
    randomize_lora_b(*plain, 0.2, 6);
  }
  ref::Llama r(s, w);
  if (!full) ref::mirror_lora(*e, r, 2.0);
  const double clean = r.loss_sum(b);
  e->set_dropout_counter(3);
  r.embed_noise = expected_noise(s, b, alpha, 7, 3);
  const double noisy = r.loss_sum(b);
  CHECK(std::fabs(noisy - clean) > 1e-4 * std::fabs(clean));
  CHECK_CLOSE(e->forward_backward(b, 0.0f).loss_sum, noisy, 1e-6, 0);
  // evaluation adds none
  CHECK_CLOSE(e->evaluate(b).loss_sum, clean, 1e-6, 0);
  CHECK(e->evaluate(b).loss_sum == plain->evaluate(b).loss_sum);
  // alpha 0: the plain pass, bit for bit (gradients included)
  auto zero = engine(s, w, 0.0f);
  if (full) zero->setup_full(); else { zero->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5)); randomize_lora_b(*zero, 0.2, 6); }
  plain->set_dropout_counter(3);
  zero->set_dropout_counter(3);
  CHECK(plain->forward_backward(b, 0.1f).loss_sum == zero->forward_backward(b, 0.1f).loss_sum);
  const std::string g = full ? "model.layers.0.mlp.up_proj.weight" : "model.layers.0.mlp.up_proj.lora_A.weight";
  CHECK(same_bits(plain->get_gradient(g), zero->get_gradient(g)));
}

// Finite differences with the noise held (the counter fixes it, as it fixes dropout's masks).
void test_gradients() {
  const ps::ModelSpec s = spec(Variant::Qwen2);
  const Weights w = random_weights(s, 21);
  auto e = engine(s, w, 5.0f);
  e->setup_lora(all_targets_lora(2, 4.0f, 0.1f, 5));
  randomize_lora_b(*e, 0.2, 6);
  const ps::Batch b = ragged_batch(8, s.vocab_size, 9);
  const std::vector<std::string> names = trainable_names(*e);
  const auto g = fd::gradients(*e, b, 3, names, counted_tokens(b));
  const fd::Result r = fd::directional(*e, b, 3, names, g, 1e-3, 99);
  CHECK(r.scale > 0);
  CHECK_CLOSE(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  for (const std::string n : {"model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.1.mlp.down_proj.lora_B.weight"})
    for (size_t i : fd::largest(g.at(n), 3)) CHECK_CLOSE(fd::element(*e, b, 3, n, i, 6e-3), g.at(n)[i], 1e-3, 1e-4);
}

// Gradient checkpointing keeps the noised layer input: the same bits.
void test_checkpointing_identical() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 41);
  const ps::Batch b = ragged_batch(9, s.vocab_size, 4);
  std::vector<float> grads[2];
  double loss[2];
  for (int ckpt = 0; ckpt < 2; ++ckpt) {
    ps::EngineOptions o;
    o.threads = 2;
    o.seed = 7;
    o.neftune_alpha = 5.0f;
    o.gradient_checkpointing = ckpt == 1;
    ps::Engine e(s, o);
    set_all(e, w);
    e.setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    randomize_lora_b(e, 0.2, 6);
    loss[ckpt] = e.forward_backward(b, 0.1f).loss_sum;
    grads[ckpt] = e.get_gradient("model.layers.0.self_attn.q_proj.lora_A.weight");
  }
  CHECK(loss[0] == loss[1]);
  CHECK(same_bits(grads[0], grads[1]));
}

// Prompt tuning: the soft prompt is not noised (PEFT adds it after the
// embedding layer the hook sits on) and L is the real tokens' count.
void test_prompt_tuning_noise() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 13);
  const int nvt = 3, T = 9, D = s.hidden_size;
  const float alpha = 15.0f;
  auto e = engine(s, w, alpha);
  ps::PromptTuningOptions o;
  o.num_virtual_tokens = nvt;
  ps::Rng rng(5);
  o.init.resize(static_cast<size_t>(nvt) * D);
  for (auto& x : o.init) x = static_cast<float>(0.7 * rng.normal());
  e->setup_prompt_tuning(o);
  const ps::Batch b = random_batch(1, T, s.vocab_size, 3);
  const ref::PromptLlama r(s, w);
  ref::PromptAdapter ad;
  ad.nvt = nvt;
  ad.prompt = e->get_tensor("prompt_embeddings");
  int64_t tokens = 0;
  const double clean = ref::loss_sum(r, ad, b, &tokens);
  // the op's values over the model's rows (prompt rows first), the real rows' part, at alpha / sqrt(T * D)
  auto noise_at = [&](int L) {
    std::vector<float> z(static_cast<size_t>(nvt + T) * D, 0.0f);
    ps::CpuBackend be(1);
    be.add_uniform_noise(z.data(), z.size(), static_cast<float>(alpha / std::sqrt(static_cast<double>(L) * D)),
                         ps::neftune_key(ps::mix_key({7, 3})));
    return std::vector<double>(z.begin() + static_cast<size_t>(nvt) * D, z.end());
  };
  ad.embed_noise = noise_at(T);
  const double want = ref::loss_sum(r, ad, b, &tokens);
  ad.embed_noise = noise_at(T + nvt);  // what counting the virtual tokens in L would give
  const double counted_virtual = ref::loss_sum(r, ad, b, &tokens);
  CHECK(std::fabs(want - clean) > 1e-4 * std::fabs(clean));
  CHECK(std::fabs(want - counted_virtual) > 1e-5 * std::fabs(want));  // the check below can tell them apart
  e->set_dropout_counter(3);
  CHECK_CLOSE(e->forward_backward(b, 0.0f).loss_sum, want, 2e-6, 0);
  CHECK_CLOSE(e->evaluate(b).loss_sum, clean, 2e-6, 0);
}

void test_bad_alpha_refused() {
  const ps::ModelSpec s = spec(Variant::Llama);
  for (float bad : {-1.0f, std::nanf(""), INFINITY}) {
    ps::EngineOptions o;
    o.neftune_alpha = bad;
    bool threw = false;
    try {
      ps::Engine e(s, o);
    } catch (const ps::Error& err) {
      threw = std::string(err.what()).find("NEFTune alpha") != std::string::npos;
    }
    CHECK(threw);
  }
}

}  // namespace

int main() {
  try {
    test_noise_op();
    for (Variant v : {Variant::Llama, Variant::Qwen2, Variant::Qwen3}) {
      test_pass_matches_reference(v, false);
      test_pass_matches_reference(v, true);
    }
    test_gradients();
    test_checkpointing_identical();
    test_prompt_tuning_noise();
    test_bad_alpha_refused();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_neftune");
}
