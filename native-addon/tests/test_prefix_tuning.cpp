// Prefix tuning (PEFT PREFIX_TUNING) in the engine:
//  - the loss equals a float64 transcription of PEFT's forward (the table as
//    past_key_values of length nvt, [nvt, 2L, Hkv, hd], keys not rotated,
//    real positions from nvt), for GQA, biases and Qwen3's q/k norms, with
//    padding, masked labels and packed rows (every sequence sees the prefix);
//    with prefix_projection through the MLP's table; on a 4-bit NF4 base;
//  - finite-difference gradients of the table, and of the projection MLP and
//    its embedding, with gradient checkpointing (which PEFT refuses) and on a
//    4-bit base; checkpointing gives the same bits;
//  - export -> import: the projected table loaded as a plain table gives the
//    same loss; generation: reset_cache copies the prefix into the cache and
//    the decoded logits equal the reference's (same argmax);
//  - training lowers the loss; bad setups are refused with ps::Error.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "check.h"
#include "error.h"
#include "fd_check.h"
#include "reference_prompt_learning.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

ps::EngineOptions options(bool ckpt, bool nf4) {
  ps::EngineOptions o;
  o.threads = 2;
  o.gradient_checkpointing = ckpt;
  if (nf4) {
    o.quantization.type = ps::QuantizationOptions::Type::Nf4;
    o.quantization.blocksize = 64;
  }
  return o;
}

ps::PrefixTuningOptions prefix_options(int nvt, int enc, uint64_t seed) {
  ps::PrefixTuningOptions o;
  o.num_virtual_tokens = nvt;
  o.projection = enc > 0;
  o.encoder_hidden_size = enc;
  o.seed = seed;
  return o;
}

Weights engine_weights(ps::Engine& e, const Weights& w) {
  Weights out = w;
  for (auto& kv : out) kv.second = e.get_tensor(kv.first);
  return out;
}

// PEFT's N(0, 1) table is large next to the tiny model's keys; scale it so
// the softmax over prefix and real keys stays well spread (any table works).
void scale_table(ps::Engine& e, const std::string& name, float f) {
  std::vector<float> t = e.get_tensor(name);
  for (auto& x : t) x *= f;
  e.set_tensor(name, t.data(), t.size());
}

void test_forward_matches_reference(Variant v, int enc, bool nf4) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 11);
  ps::Engine e(s, options(false, nf4));
  set_all(e, w);
  const int nvt = 3;
  e.setup_prefix_tuning(prefix_options(nvt, enc, 5));
  if (enc == 0) scale_table(e, "prefix_embeddings", 0.5f);
  const ps::Batch b = ragged_batch(10, s.vocab_size, 3);
  const Weights ew = engine_weights(e, w);
  const ref::PromptLlama r(s, ew);
  ref::PromptAdapter ad;
  ad.nvt = nvt;
  ad.prefix_table = e.prefix_table();
  const int Dkv = s.num_kv_heads * s.head_dim;
  CHECK(ad.prefix_table.size() == static_cast<size_t>(nvt) * s.num_layers * 2 * Dkv);
  if (enc == 0) CHECK(ad.prefix_table == e.get_tensor("prefix_embeddings"));
  int64_t want_tokens = 0;
  const double want = ref::loss_sum(r, ad, b, &want_tokens);
  CHECK(want_tokens == counted_tokens(b));
  const ps::LossResult got = e.evaluate(b);
  CHECK(got.tokens == want_tokens);
  CHECK_CLOSE(got.loss_sum, want, 2e-6, 0);
  CHECK_CLOSE(e.forward_backward(b, 0.0f).loss_sum, want, 2e-6, 0);
  ps::Engine plain(s, options(false, nf4));
  set_all(plain, w);
  CHECK(std::fabs(plain.evaluate(b).loss_sum - want) > 1e-3);
}

void check_gradients(ps::Engine& e, const ps::Batch& b, const std::string& label) {
  const std::vector<std::string> names = trainable_names(e);
  const auto g = fd::gradients(e, b, 0, names, counted_tokens(b));
  for (const auto& n : names) {
    double gmax = 0;
    for (float x : g.at(n)) gmax = std::max(gmax, std::fabs(static_cast<double>(x)));
    if (!(gmax > 1e-5)) std::fprintf(stderr, "  %s: %s has no gradient\n", label.c_str(), n.c_str());
    CHECK(gmax > 1e-5);
  }
  const fd::Result r = fd::directional(e, b, 0, names, g, 1e-3, 77);
  if (!pstest::close(r.fd, r.analytic, 1e-3, 1e-4 * r.scale))
    std::fprintf(stderr, "  %s: directional fd %.9g analytic %.9g\n", label.c_str(), r.fd, r.analytic);
  CHECK_CLOSE(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  for (const auto& n : names)
    for (size_t i : fd::largest(g.at(n), 2)) {
      const double got = fd::element(e, b, 0, n, i, 6e-3);
      if (!pstest::close(got, g.at(n)[i], 1e-3, 1e-4))
        std::fprintf(stderr, "  %s: %s[%zu] fd %.9g analytic %.9g\n", label.c_str(), n.c_str(), i, got, g.at(n)[i]);
      CHECK_CLOSE(got, g.at(n)[i], 1e-3, 1e-4);
    }
}

void test_gradients(Variant v, int enc, bool ckpt, bool nf4) {
  const ps::ModelSpec s = spec(v);
  ps::Engine e(s, options(ckpt, nf4));
  set_all(e, random_weights(s, 21));
  e.setup_prefix_tuning(prefix_options(3, enc, 6));
  if (enc == 0) scale_table(e, "prefix_embeddings", 0.5f);
  const ps::Batch b = ragged_batch(8, s.vocab_size, 9);
  const std::string label = std::string("prefix ") + variant_name(v) + (enc ? " projection" : "") +
                            (ckpt ? " ckpt" : "") + (nf4 ? " nf4" : "");
  CHECK(trainable_names(e).size() == (enc ? 5u : 1u));
  check_gradients(e, b, label);
}

void test_checkpointing_same_bits(int enc) {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 23);
  const ps::Batch b = ragged_batch(10, s.vocab_size, 4);
  std::vector<std::vector<float>> g[2];
  double loss[2];
  for (int ckpt = 0; ckpt < 2; ++ckpt) {
    ps::Engine e(s, options(ckpt, false));
    set_all(e, w);
    e.setup_prefix_tuning(prefix_options(4, enc, 8));
    loss[ckpt] = e.forward_backward(b, 0.1f).loss_sum;
    for (const auto& n : trainable_names(e)) g[ckpt].push_back(e.get_gradient(n));
  }
  CHECK(loss[0] == loss[1]);
  CHECK(g[0] == g[1]);
}

// Export (the projected table) -> import (a plain table, as for a saved PEFT adapter).
void test_export_import() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 29);
  const ps::Batch b = ragged_batch(10, s.vocab_size, 5);
  ps::Engine e(s, options(true, false));
  set_all(e, w);
  e.setup_prefix_tuning(prefix_options(4, 12, 3));
  ps::OptimizerStep step;
  step.lr = 1e-2f;
  for (int i = 0; i < 3; ++i) {
    e.forward_backward(b, 1.0f / counted_tokens(b));
    e.optimizer_step(step);
  }
  const std::vector<float> table = e.prefix_table();
  ps::Engine f(s, options(false, false));
  set_all(f, w);
  f.setup_prefix_tuning(prefix_options(4, 0, 99));
  f.set_tensor("prefix_embeddings", table.data(), table.size());
  CHECK(f.prefix_table() == table);
  const double a = e.evaluate(b).loss_sum, c = f.evaluate(b).loss_sum;
  CHECK(a == c);
}

void test_decode_matches_forward(Variant v, int enc, bool nf4) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 31);
  ps::Engine e(s, options(false, nf4));
  set_all(e, w);
  const int nvt = 5;
  e.setup_prefix_tuning(prefix_options(nvt, enc, 9));
  if (enc == 0) scale_table(e, "prefix_embeddings", 0.5f);
  const ps::Batch b = random_batch(1, 8, s.vocab_size, 12);
  const std::vector<int> ids(b.input_ids.begin(), b.input_ids.end());
  const Weights ew = engine_weights(e, w);  // a 4-bit base: its dequantized linears
  const ref::PromptLlama r(s, ew);
  ref::PromptAdapter ad;
  ad.nvt = nvt;
  ad.prefix_table = e.prefix_table();
  const std::vector<double> want = r.logits(ad, ids);
  const int V = s.vocab_size;
  e.reset_cache(static_cast<int>(ids.size()));
  std::vector<std::vector<float>> got;
  got.push_back(e.decode(b.input_ids.data(), 3));
  for (size_t t = 3; t < ids.size(); ++t) got.push_back(e.decode(&b.input_ids[t], 1));
  for (size_t k = 0; k < got.size(); ++k) {
    const size_t t = k + 2;
    const double* row = &want[t * V];
    int arg_got = 0, arg_want = 0;
    for (int c = 0; c < V; ++c) {
      CHECK_CLOSE(got[k][c], row[c], 1e-4, 1e-4);
      if (got[k][c] > got[k][arg_got]) arg_got = c;
      if (row[c] > row[arg_want]) arg_want = c;
    }
    CHECK(arg_got == arg_want);
  }
  // The KV cache holds the prefix too: kv bytes = 2 L (maxTokens + nvt) Dkv floats (+ the decode arena).
  CHECK(e.memory().kv_cache_bytes >= 2ull * s.num_layers * (ids.size() + nvt) * s.num_kv_heads * s.head_dim * 4);
}

void test_training_lowers_loss(int enc, bool ckpt, bool nf4) {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 41);
  ps::Engine e(s, options(ckpt, nf4));
  set_all(e, w);
  e.setup_prefix_tuning(prefix_options(4, enc, 10));
  if (enc == 0) scale_table(e, "prefix_embeddings", 0.5f);
  const std::vector<float> before = e.get_tensor("model.layers.1.self_attn.k_proj.weight");
  const ps::Batch b = random_batch(2, 12, s.vocab_size, 14);
  const double first = e.evaluate(b).loss_sum;
  ps::OptimizerStep step;
  step.lr = enc ? 2e-2f : 0.05f;
  for (int i = 0; i < 40; ++i) {
    e.forward_backward(b, 1.0f / 22);
    e.optimizer_step(step);
  }
  const double last = e.evaluate(b).loss_sum;
  std::printf("prefix tuning%s%s%s: loss %.4f -> %.4f\n", enc ? " projection" : "", ckpt ? " ckpt" : "",
              nf4 ? " nf4" : "", first / 22, last / 22);
  CHECK(last < 0.8 * first);
  CHECK(e.get_tensor("model.layers.1.self_attn.k_proj.weight") == before);
}

template <typename F>
bool refused(F&& f, const char* needle) {
  try {
    f();
  } catch (const ps::Error& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return true;
    std::fprintf(stderr, "  unexpected message: %s\n", e.what());
  }
  return false;
}

void test_errors() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 51);
  ps::Engine e(s, options(false, false));
  set_all(e, w);
  CHECK(refused([&] { e.setup_prefix_tuning(prefix_options(0, 0, 1)); }, "numVirtualTokens must be at least 1"));
  ps::PrefixTuningOptions o = prefix_options(2, 0, 1);
  o.projection = true;
  CHECK(refused([&] { e.setup_prefix_tuning(o); }, "encoderHiddenSize"));
  e.setup_prefix_tuning(prefix_options(2, 0, 1));
  CHECK(refused([&] { e.setup_lora(all_targets_lora(2, 4.0f, 0.0f, 1)); }, "already has a training method (prefix tuning)"));
  // A saved table of another shape (L * 2 * Dkv = 2 * 2 * 8 = 32 columns here).
  std::vector<float> wrong(2 * 48, 0.0f);
  CHECK(refused([&] { e.set_tensor("prefix_embeddings", wrong.data(), wrong.size()); }, "is [2, 32] = 64 values"));
  const std::vector<ps::ParameterInfo> params = e.parameters();
  CHECK(params.back().name == "prefix_embeddings" && params.back().shape == std::vector<int64_t>({2, 32}));
}

}  // namespace

int main() {
  try {
    for (Variant v : {Variant::Llama, Variant::Qwen2, Variant::Qwen3}) test_forward_matches_reference(v, 0, false);
    test_forward_matches_reference(Variant::Llama, 12, false);
    test_forward_matches_reference(Variant::Qwen3, 7, false);
    test_forward_matches_reference(Variant::Llama, 0, true);
    test_gradients(Variant::Llama, 0, false, false);
    test_gradients(Variant::Qwen3, 0, false, false);
    test_gradients(Variant::Llama, 10, false, false);
    test_gradients(Variant::Llama, 10, true, false);
    test_gradients(Variant::Llama, 0, true, true);
    test_gradients(Variant::Qwen2, 6, false, true);
    test_checkpointing_same_bits(0);
    test_checkpointing_same_bits(9);
    test_export_import();
    test_decode_matches_forward(Variant::Llama, 0, false);
    test_decode_matches_forward(Variant::Qwen3, 8, false);
    test_decode_matches_forward(Variant::Llama, 6, true);
    test_training_lowers_loss(0, false, false);
    test_training_lowers_loss(16, true, false);
    test_training_lowers_loss(0, true, true);
    test_errors();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_prefix_tuning");
}
