// Prompt tuning (PEFT PROMPT_TUNING) in the engine:
//  - the loss equals a float64 transcription of PEFT's forward (virtual
//    embeddings prepended, positions 0..nvt-1 then the real tokens from nvt,
//    labels -100 for the virtual tokens, so the last one predicts labels[0]),
//    for GQA, biases and Qwen3's q/k norms, rows with padding and masked labels;
//  - finite-difference gradients of prompt_embeddings (GQA; with gradient
//    checkpointing; on a 4-bit NF4 base), and nothing else gets a gradient;
//  - generation: reset_cache runs the soft prompt through the model, and the
//    decoded logits equal the reference's at the same positions (same argmax);
//  - training lowers the loss and leaves the base untouched;
//  - bad setups and packed batches are refused with ps::Error.
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

ps::PromptTuningOptions prompt_options(const ps::ModelSpec& s, int nvt, uint64_t seed) {
  ps::PromptTuningOptions o;
  o.num_virtual_tokens = nvt;
  ps::Rng rng(seed);
  o.init.resize(static_cast<size_t>(nvt) * s.hidden_size);
  for (auto& x : o.init) x = static_cast<float>(0.7 * rng.normal());
  return o;
}

// Row 0: a full sequence with a masked label inside; row 1: shorter, then
// padding, its first label masked (so the last virtual token predicts nothing there).
ps::Batch padded_batch(int T, int V, uint64_t seed) {
  ps::Batch b = random_batch(2, T, V, seed);
  b.labels[3] = -100;
  b.labels[T] = -100;
  for (int t = T - 3; t < T; ++t) {
    b.input_ids[T + t] = 0;
    b.labels[T + t] = -100;
    b.segments[T + t] = -1;
    b.positions[T + t] = 0;
  }
  return b;
}

// The engine's weights as the reference sees them (a 4-bit base: its dequantized linears).
Weights engine_weights(ps::Engine& e, const Weights& w) {
  Weights out = w;
  for (auto& kv : out) kv.second = e.get_tensor(kv.first);
  return out;
}

void test_forward_matches_reference(Variant v, bool nf4) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 11);
  ps::Engine e(s, options(false, nf4));
  set_all(e, w);
  const int nvt = 3;
  e.setup_prompt_tuning(prompt_options(s, nvt, 5));
  const ps::Batch b = padded_batch(9, s.vocab_size, 3);
  const Weights ew = engine_weights(e, w);
  const ref::PromptLlama r(s, ew);
  ref::PromptAdapter ad;
  ad.nvt = nvt;
  ad.prompt = e.get_tensor("prompt_embeddings");
  int64_t want_tokens = 0;
  const double want = ref::loss_sum(r, ad, b, &want_tokens);
  // Row 0 counts its 7 real predictions plus labels[0] from the last virtual
  // token; row 1 (first label masked, 6 real tokens) counts 5.
  CHECK(want_tokens == 8 + 5);
  const ps::LossResult got = e.evaluate(b);
  CHECK(got.tokens == want_tokens);
  // fp32 against float64 over two layers: ~3e-8 relative observed for the base model.
  CHECK_CLOSE(got.loss_sum, want, 2e-6, 0);
  const ps::LossResult train = e.forward_backward(b, 0.0f);
  CHECK(train.tokens == want_tokens);
  CHECK_CLOSE(train.loss_sum, want, 2e-6, 0);
  // The prompt matters: without it (the plain model) the loss differs.
  ps::Engine plain(s, options(false, nf4));
  set_all(plain, w);
  CHECK(std::fabs(plain.evaluate(b).loss_sum - want) > 1e-3);
}

// Directional and element-wise central differences (fd_check.h states the noise budget).
void check_gradients(ps::Engine& e, const ps::Batch& b, const char* label) {
  const std::vector<std::string> names = {"prompt_embeddings"};
  const int64_t tokens = counted_tokens(b) + b.batch_size;  // + labels[0] of each row (all unmasked here)
  const auto g = fd::gradients(e, b, 0, names, tokens);
  double gmax = 0;
  for (float x : g.at(names[0])) gmax = std::max(gmax, std::fabs(static_cast<double>(x)));
  CHECK(gmax > 1e-4);
  const fd::Result r = fd::directional(e, b, 0, names, g, 1e-3, 77);
  if (!pstest::close(r.fd, r.analytic, 1e-3, 1e-4 * r.scale))
    std::fprintf(stderr, "  %s: directional fd %.9g analytic %.9g\n", label, r.fd, r.analytic);
  CHECK_CLOSE(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  for (size_t i : fd::largest(g.at(names[0]), 4)) {
    const double got = fd::element(e, b, 0, names[0], i, 6e-3);
    if (!pstest::close(got, g.at(names[0])[i], 1e-3, 1e-4))
      std::fprintf(stderr, "  %s: element %zu fd %.9g analytic %.9g\n", label, i, got, g.at(names[0])[i]);
    CHECK_CLOSE(got, g.at(names[0])[i], 1e-3, 1e-4);
  }
}

void test_gradients(Variant v, bool ckpt, bool nf4) {
  const ps::ModelSpec s = spec(v);
  ps::Engine e(s, options(ckpt, nf4));
  set_all(e, random_weights(s, 21));
  e.setup_prompt_tuning(prompt_options(s, 4, 6));
  const ps::Batch b = random_batch(2, 8, s.vocab_size, 9);
  const std::string label = std::string("prompt ") + variant_name(v) + (ckpt ? " ckpt" : "") + (nf4 ? " nf4" : "");
  check_gradients(e, b, label.c_str());
  // Only the prompt trains: the base reports no gradient.
  int trainable = 0;
  for (const auto& p : e.parameters()) trainable += p.trainable;
  CHECK(trainable == 1);
  bool threw = false;
  try {
    e.get_gradient("model.embed_tokens.weight");
  } catch (const ps::Error&) {
    threw = true;
  }
  CHECK(threw);
}

// Checkpointing changes what is kept, not the numbers.
void test_checkpointing_same_gradient() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 23);
  const ps::Batch b = padded_batch(10, s.vocab_size, 4);
  std::vector<float> g[2];
  double loss[2];
  for (int ckpt = 0; ckpt < 2; ++ckpt) {
    ps::Engine e(s, options(ckpt, false));
    set_all(e, w);
    e.setup_prompt_tuning(prompt_options(s, 3, 8));
    loss[ckpt] = e.forward_backward(b, 0.1f).loss_sum;
    g[ckpt] = e.get_gradient("prompt_embeddings");
  }
  CHECK(loss[0] == loss[1]);
  CHECK(g[0] == g[1]);
}

void test_decode_matches_forward(Variant v, bool nf4) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 31);
  ps::Engine e(s, options(false, nf4));
  set_all(e, w);
  const int nvt = 4;
  e.setup_prompt_tuning(prompt_options(s, nvt, 9));
  const ps::Batch b = random_batch(1, 7, s.vocab_size, 12);
  const std::vector<int> ids(b.input_ids.begin(), b.input_ids.end());
  const Weights ew = engine_weights(e, w);  // a 4-bit base: its dequantized linears
  const ref::PromptLlama r(s, ew);
  ref::PromptAdapter ad;
  ad.nvt = nvt;
  ad.prompt = e.get_tensor("prompt_embeddings");
  const std::vector<double> want = r.logits(ad, ids);
  const int V = s.vocab_size;
  e.reset_cache(static_cast<int>(ids.size()));  // maxTokens counts the real tokens only
  // A prefill of 3 tokens, then one at a time.
  std::vector<std::vector<float>> got;
  got.push_back(e.decode(b.input_ids.data(), 3));
  for (size_t t = 3; t < ids.size(); ++t) got.push_back(e.decode(&b.input_ids[t], 1));
  for (size_t k = 0; k < got.size(); ++k) {
    const size_t t = k == 0 ? 2 : k + 2;  // the real token whose logits decode returned
    const double* row = &want[(nvt + t) * V];
    int arg_got = 0, arg_want = 0;
    for (int c = 0; c < V; ++c) {
      CHECK_CLOSE(got[k][c], row[c], 1e-4, 1e-4);
      if (got[k][c] > got[k][arg_got]) arg_got = c;
      if (row[c] > row[arg_want]) arg_want = c;
    }
    CHECK(arg_got == arg_want);
  }
  // The cache is full: one more real token is refused, naming maxTokens.
  bool threw = false;
  try {
    e.decode(b.input_ids.data(), 1);
  } catch (const ps::Error& err) {
    threw = std::string(err.what()).find("reserved 7") != std::string::npos;
  }
  CHECK(threw);
}

void test_training_lowers_loss(bool nf4) {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 41);
  ps::Engine e(s, options(false, nf4));
  set_all(e, w);
  e.setup_prompt_tuning(prompt_options(s, 4, 10));
  const std::vector<float> before = e.get_tensor("model.layers.0.mlp.up_proj.weight");
  // A tiny task: the same two sequences every step.
  const ps::Batch b = random_batch(2, 12, s.vocab_size, 14);
  const double first = e.evaluate(b).loss_sum;
  ps::OptimizerStep step;
  step.lr = 0.05f;
  for (int i = 0; i < 40; ++i) {
    const ps::LossResult r = e.forward_backward(b, 1.0f / 24);
    (void)r;
    e.optimizer_step(step);
  }
  const double last = e.evaluate(b).loss_sum;
  std::printf("prompt tuning%s: loss %.4f -> %.4f\n", nf4 ? " (nf4 base)" : "", first / 24, last / 24);
  CHECK(last < 0.8 * first);
  CHECK(e.get_tensor("model.layers.0.mlp.up_proj.weight") == before);
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
  {
    ps::Engine e(s, options(false, false));
    set_all(e, w);
    ps::PromptTuningOptions o = prompt_options(s, 0, 1);
    CHECK(refused([&] { e.setup_prompt_tuning(o); }, "numVirtualTokens must be at least 1"));
    o = prompt_options(s, 3, 1);
    o.init.pop_back();
    CHECK(refused([&] { e.setup_prompt_tuning(o); }, "expected numVirtualTokens x hiddenSize"));
  }
  ps::Engine e(s, options(false, false));
  set_all(e, w);
  e.setup_prompt_tuning(prompt_options(s, 3, 1));
  CHECK(refused([&] { e.setup_prompt_tuning(prompt_options(s, 3, 1)); }, "already has a training method (prompt tuning)"));
  // Packing: two sequences in one row.
  const ps::Batch packed = ragged_batch(10, s.vocab_size, 2);
  CHECK(refused([&] { e.forward_backward(packed, 1.0f); }, "turn sequence packing off"));
  CHECK(refused([&] { e.evaluate(packed); }, "packs several sequences"));
  std::vector<float> wrong(3 * 16 + 1, 0.0f);
  CHECK(refused([&] { e.set_tensor("prompt_embeddings", wrong.data(), wrong.size()); }, "is [3, 16] = 48 values"));
  CHECK(refused([&] { e.prefix_table(); }, "no prefix tuning"));
  // Bad inputs are reported with the caller's indices, before the virtual tokens are added.
  ps::Batch bad = random_batch(1, 5, s.vocab_size, 3);
  bad.positions[2] = -1;
  CHECK(refused([&] { e.forward_backward(bad, 1.0f); }, "batch.positions[2]"));
}

}  // namespace

int main() {
  try {
    for (Variant v : {Variant::Llama, Variant::Qwen2, Variant::Qwen3}) test_forward_matches_reference(v, false);
    test_forward_matches_reference(Variant::Llama, true);
    test_gradients(Variant::Llama, false, false);
    test_gradients(Variant::Qwen3, false, false);
    test_gradients(Variant::Llama, true, false);
    test_gradients(Variant::Llama, false, true);
    test_checkpointing_same_gradient();
    test_decode_matches_forward(Variant::Llama, false);
    test_decode_matches_forward(Variant::Qwen2, false);
    test_decode_matches_forward(Variant::Llama, true);
    test_training_lowers_loss(false);
    test_training_lowers_loss(true);
    test_errors();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_prompt_tuning");
}
