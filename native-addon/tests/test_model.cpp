// The model through the whole engine on tiny random models: the forward
// against an independent float64 transcription of Hugging Face's Llama,
// gradients against finite differences (LoRA and full fine-tuning, every
// architecture variant, padding and packed sequences, dropout), and the
// invariants training relies on (B = 0 is the base model, checkpointing
// changes nothing, runs are reproducible, accumulation adds).
#include <cstdlib>
#include <cstring>
#include <memory>

#include "check.h"
#include "error.h"
#include "fd_check.h"
#include "reference_llama.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

const Variant kVariants[] = {Variant::Llama, Variant::Tied, Variant::Qwen2, Variant::Qwen3, Variant::Llama3Rope};

std::unique_ptr<ps::Engine> engine(const ps::ModelSpec& s, const Weights& w, int threads = 2, bool ckpt = false,
                                   uint64_t seed = 7) {
  ps::EngineOptions o;
  o.threads = threads;
  o.gradient_checkpointing = ckpt;
  o.seed = seed;
  auto e = std::make_unique<ps::Engine>(s, o);
  set_all(*e, w);
  return e;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void test_forward_matches_reference(Variant v) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 11);
  const ps::Batch batches[] = {random_batch(2, 9, s.vocab_size, 3), ragged_batch(10, s.vocab_size, 4)};
  for (const auto& b : batches) {
    ref::Llama r(s, w);
    int64_t ref_tokens = 0;
    const double want = r.loss_sum(b, &ref_tokens);
    auto e = engine(s, w);
    const ps::LossResult got = e->evaluate(b);
    CHECK(got.tokens == ref_tokens);
    CHECK(got.tokens == counted_tokens(b));
    // fp32 against float64 over two layers: observed ~3e-8 relative; 1e-6
    // leaves a wide margin and is far below any semantic error.
    CHECK_CLOSE(got.loss_sum, want, 1e-6, 0);

    // The same with LoRA on every linear, B nonzero so the branch matters.
    auto el = engine(s, w);
    el->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));  // scale = alpha / r = 2
    randomize_lora_b(*el, 0.2, 6);
    ref::Llama rl(s, w);
    ref::mirror_lora(*el, rl, 2.0);
    const double want_l = rl.loss_sum(b);
    CHECK(std::fabs(want_l - want) > 1e-3);  // the branch changes the loss
    CHECK_CLOSE(el->evaluate(b).loss_sum, want_l, 1e-6, 0);
    // Training mode without dropout computes the same forward.
    CHECK_CLOSE(el->forward_backward(b, 0.0f).loss_sum, want_l, 1e-6, 0);
  }
}

void test_rslora_scale() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 12);
  const ps::Batch b = random_batch(1, 8, s.vocab_size, 3);
  auto e = engine(s, w);
  ps::LoraOptions o = all_targets_lora(4, 3.0f, 0.0f, 5);
  o.rslora = true;  // scale = alpha / sqrt(r) = 1.5
  e->setup_lora(o);
  randomize_lora_b(*e, 0.2, 6);
  ref::Llama r(s, w);
  ref::mirror_lora(*e, r, 1.5);
  CHECK_CLOSE(e->evaluate(b).loss_sum, r.loss_sum(b), 1e-6, 0);
}

bool verbose() { return std::getenv("PS_TEST_VERBOSE") != nullptr; }

// Directional check over every trainable tensor plus the largest-gradient
// elements of a few tensors, all on the mean loss. Its fp32 rounding noise is
// about 1e-7 (the engine's loss sum matches the float64 reference to ~3e-8
// relative), so a central difference with step h carries noise ~1e-7 / h;
// Richardson extrapolation over h and h/2 removes the O(h^2) truncation that
// a plain central difference shows on these small, strongly curved models.
//  - direction: u ~ N(0, 1) per element, h = 1e-3: noise ~1e-4 in a value
//    whose scale |g||u| is ~1..10; tolerance 1e-4 |g||u| (+ 1e-3 relative).
//  - elements: h = 6e-3 on the three largest |g| of a tensor: noise ~2e-5,
//    plus what the extrapolation leaves of the embeddings' strong curvature
//    (observed errors <= 7e-5 over all variants); tolerance 1e-3 |g| + 1e-4.
void check_gradients(ps::Engine& e, const ps::Batch& b, uint64_t counter, const std::vector<std::string>& names,
                     const std::vector<std::string>& element_names, const char* label) {
  const int64_t tokens = counted_tokens(b);
  const auto g = fd::gradients(e, b, counter, names, tokens);
  const fd::Result r = fd::directional(e, b, counter, names, g, 1e-3, 99);
  CHECK(r.scale > 0);
  const bool ok = pstest::close(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  if (!ok || verbose())
    std::fprintf(stderr, "  %s: directional fd %.9g analytic %.9g (|g||u| %.3g, err/scale %.2g)\n", label, r.fd,
                 r.analytic, r.scale, std::fabs(r.fd - r.analytic) / r.scale);
  CHECK_CLOSE(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  for (const auto& n : element_names) {
    for (size_t i : fd::largest(g.at(n), 3)) {
      const double want = g.at(n)[i];
      const double got = fd::element(e, b, counter, n, i, 6e-3);
      if (!pstest::close(got, want, 1e-3, 1e-4) || verbose())
        std::fprintf(stderr, "  %s: %s[%zu] fd %.9g analytic %.9g (err %.2g)\n", label, n.c_str(), i, got, want,
                     std::fabs(got - want));
      CHECK_CLOSE(got, want, 1e-3, 1e-4);
    }
  }
}

void test_lora_gradients(Variant v, float dropout) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 21);
  auto e = engine(s, w);
  e->setup_lora(all_targets_lora(2, 4.0f, dropout, 5));
  randomize_lora_b(*e, 0.2, 6);  // so that A gets gradient too
  const ps::Batch b = ragged_batch(10, s.vocab_size, 8);
  const std::vector<std::string> names = trainable_names(*e);
  CHECK(names.size() == static_cast<size_t>(s.num_layers) * 7 * 2);
  const std::vector<std::string> elems = {
      "model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.k_proj.lora_B.weight",
      "model.layers.1.self_attn.v_proj.lora_A.weight", "model.layers.1.self_attn.o_proj.lora_B.weight",
      "model.layers.0.mlp.gate_proj.lora_B.weight",    "model.layers.1.mlp.up_proj.lora_A.weight",
      "model.layers.0.mlp.down_proj.lora_A.weight"};
  const std::string label = std::string("lora ") + variant_name(v) + (dropout > 0 ? " dropout" : "");
  check_gradients(*e, b, 3, names, elems, label.c_str());
}

void test_full_gradients(Variant v) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 31);
  auto e = engine(s, w);
  e->setup_full();
  const ps::Batch b = ragged_batch(10, s.vocab_size, 9);
  const std::vector<std::string> names = trainable_names(*e);
  CHECK(names.size() == ps::expected_weights(s).size());
  std::vector<std::string> elems = {"model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                                    "model.layers.1.self_attn.k_proj.weight",
                                    "model.layers.0.post_attention_layernorm.weight",
                                    "model.layers.1.mlp.down_proj.weight", "model.norm.weight"};
  if (!s.tie_word_embeddings) elems.push_back("lm_head.weight");
  if (s.attention_bias) elems.push_back("model.layers.0.self_attn.q_proj.bias");
  if (s.qk_norm) {
    elems.push_back("model.layers.0.self_attn.q_norm.weight");
    elems.push_back("model.layers.1.self_attn.k_norm.weight");
  }
  const std::string label = std::string("full ") + variant_name(v);
  check_gradients(*e, b, 0, names, elems, label.c_str());
}

// PEFT's initial adapter (B = 0) is the base model, to the bit.
void test_zero_b_is_base_model() {
  for (Variant v : kVariants) {
    const ps::ModelSpec s = spec(v);
    const Weights w = random_weights(s, 41);
    const ps::Batch b = ragged_batch(10, s.vocab_size, 5);
    auto base = engine(s, w);
    const double want = base->evaluate(b).loss_sum;
    for (auto init : {ps::LoraInit::Default, ps::LoraInit::Gaussian}) {
      auto e = engine(s, w);
      ps::LoraOptions o = all_targets_lora(4, 16.0f, 0.0f, 5);
      o.init = init;
      e->setup_lora(o);
      const double got = e->evaluate(b).loss_sum;
      const double got_train = e->forward_backward(b, 1.0f).loss_sum;
      CHECK(std::memcmp(&got, &want, sizeof(double)) == 0);
      CHECK(std::memcmp(&got_train, &want, sizeof(double)) == 0);
    }
  }
}

// PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform a=sqrt(5)) or
// N(0, 1/r^2) ("gaussian"), B = 0. Checked by the moments of a large A.
void test_lora_init_distribution() {
  ps::ModelSpec s = spec(Variant::Llama);
  s.hidden_size = 256;
  s.num_heads = 4;
  s.head_dim = 64;
  s.num_kv_heads = 2;
  s.num_layers = 1;
  const Weights w = random_weights(s, 1);
  for (auto init : {ps::LoraInit::Default, ps::LoraInit::Gaussian}) {
    auto e = engine(s, w);
    ps::LoraOptions o = all_targets_lora(8, 8.0f, 0.0f, 17);
    o.init = init;
    e->setup_lora(o);
    const auto A = e->get_tensor("model.layers.0.self_attn.q_proj.lora_A.weight");  // [8, 256]
    const auto B = e->get_tensor("model.layers.0.self_attn.q_proj.lora_B.weight");
    double mean = 0, var = 0, mx = 0;
    for (float x : A) mean += x;
    mean /= A.size();
    for (float x : A) {
      var += (x - mean) * (x - mean);
      mx = std::max(mx, std::fabs(static_cast<double>(x)));
    }
    var /= A.size();
    const double n = static_cast<double>(A.size());
    if (init == ps::LoraInit::Default) {
      const double bound = 1.0 / 16.0;  // 1/sqrt(256)
      CHECK(mx <= bound);
      CHECK(mx > 0.95 * bound);
      // variance bound^2/3; the sample variance's sd is ~ 0.9 var/sqrt(n) for a uniform: 5 sd
      CHECK_CLOSE(var, bound * bound / 3, 5 * 0.9 / std::sqrt(n), 0);
      CHECK_CLOSE(mean, 0, 0, 5 * bound / std::sqrt(3 * n));
    } else {
      const double sd = 1.0 / 8;  // 1/r
      CHECK_CLOSE(var, sd * sd, 5 * std::sqrt(2.0 / n), 0);
      CHECK_CLOSE(mean, 0, 0, 5 * sd / std::sqrt(n));
    }
    for (float x : B) CHECK(x == 0.0f);
    // Different seeds, different A; the same seed, the same A.
    auto e2 = engine(s, w);
    e2->setup_lora(o);
    CHECK(same_bytes(e2->get_tensor("model.layers.0.self_attn.q_proj.lora_A.weight"), A));
    o.seed = 18;
    auto e3 = engine(s, w);
    e3->setup_lora(o);
    CHECK(!same_bytes(e3->get_tensor("model.layers.0.self_attn.q_proj.lora_A.weight"), A));
  }
}

// Recomputing each layer in backward gives the same bytes as keeping everything.
void test_checkpointing_identical() {
  for (Variant v : {Variant::Llama, Variant::Qwen3, Variant::Qwen2}) {
    const ps::ModelSpec s = spec(v);
    const Weights w = random_weights(s, 51);
    const ps::Batch b = ragged_batch(10, s.vocab_size, 6);
    for (int method = 0; method < 2; ++method) {
      auto plain = engine(s, w, 2, false);
      auto ckpt = engine(s, w, 2, true);
      for (auto* e : {plain.get(), ckpt.get()}) {
        if (method == 0) {
          e->setup_lora(all_targets_lora(2, 4.0f, 0.1f, 5));
          randomize_lora_b(*e, 0.2, 6);
        } else {
          e->setup_full();
        }
      }
      const double l1 = plain->forward_backward(b, 0.03f).loss_sum;
      const double l2 = ckpt->forward_backward(b, 0.03f).loss_sum;
      CHECK(std::memcmp(&l1, &l2, sizeof(double)) == 0);
      for (const auto& n : trainable_names(*plain)) CHECK(same_bytes(plain->get_gradient(n), ckpt->get_gradient(n)));
      CHECK(ckpt->memory().activation_bytes < plain->memory().activation_bytes);
    }
  }
}

// Same seed, data and threads: the same bytes, through dropout and optimizer steps.
void test_determinism() {
  const ps::ModelSpec s = spec(Variant::Qwen2);
  const Weights w = random_weights(s, 61);
  const ps::Batch b1 = ragged_batch(10, s.vocab_size, 1), b2 = random_batch(2, 7, s.vocab_size, 2);
  std::vector<std::vector<float>> runs[2];
  double losses[2][3];
  for (int run = 0; run < 2; ++run) {
    auto e = engine(s, w, 2, false, 123);
    e->setup_lora(all_targets_lora(2, 4.0f, 0.2f, 9));
    ps::OptimizerStep step;
    step.lr = 1e-2f;
    step.weight_decay = 0.01f;
    step.max_grad_norm = 1.0f;
    losses[run][0] = e->forward_backward(b1, 0.1f).loss_sum;
    losses[run][1] = e->forward_backward(b2, 0.1f).loss_sum;
    losses[run][2] = e->optimizer_step(step);
    e->forward_backward(b1, 0.1f);
    for (const auto& n : trainable_names(*e)) {
      runs[run].push_back(e->get_tensor(n));
      runs[run].push_back(e->get_gradient(n));
    }
  }
  CHECK(std::memcmp(losses[0], losses[1], sizeof(losses[0])) == 0);
  CHECK(runs[0].size() == runs[1].size());
  for (size_t i = 0; i < runs[0].size(); ++i) CHECK(same_bytes(runs[0][i], runs[1][i]));
}

// A padded row scores as the sequence alone; a packed row as its two sequences apart.
void test_padding_and_packing() {
  for (Variant v : {Variant::Llama, Variant::Qwen3}) {
    const ps::ModelSpec s = spec(v);
    const Weights w = random_weights(s, 71);
    auto e = engine(s, w);
    e->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    randomize_lora_b(*e, 0.2, 6);
    const int T = 12;
    const ps::Batch b = ragged_batch(T, s.vocab_size, 7);
    auto row = [&](int r, int from, int to) {  // [from, to) of row r as its own batch
      ps::Batch one;
      one.batch_size = 1;
      one.seq_len = to - from;
      for (int t = from; t < to; ++t) {
        const size_t i = static_cast<size_t>(r) * T + t;
        one.input_ids.push_back(b.input_ids[i]);
        one.labels.push_back(t == from ? -100 : b.labels[i]);
        one.segments.push_back(0);
        one.positions.push_back(b.positions[i]);
      }
      return one;
    };
    const int split = T / 2 - 1;
    double parts = e->evaluate(row(0, 0, T)).loss_sum + e->evaluate(row(1, 0, T - 3)).loss_sum +
                   e->evaluate(row(2, 0, split)).loss_sum + e->evaluate(row(2, split, T)).loss_sum;
    int64_t part_tokens = 0;
    for (auto bb : {row(0, 0, T), row(1, 0, T - 3), row(2, 0, split), row(2, split, T)})
      part_tokens += e->evaluate(bb).tokens;
    const ps::LossResult whole = e->evaluate(b);
    CHECK(whole.tokens == part_tokens);
    CHECK_CLOSE(whole.loss_sum, parts, 1e-6, 0);

    // Gradients too: the batch's gradient is the sum of its parts'.
    e->zero_gradients();
    e->forward_backward(b, 1.0f);
    const auto g_whole = e->get_gradient("model.layers.0.self_attn.q_proj.lora_A.weight");
    e->zero_gradients();
    for (auto bb : {row(0, 0, T), row(1, 0, T - 3), row(2, 0, split), row(2, split, T)}) e->forward_backward(bb, 1.0f);
    const auto g_parts = e->get_gradient("model.layers.0.self_attn.q_proj.lora_A.weight");
    double gmax = 0;
    for (float x : g_whole) gmax = std::max(gmax, std::fabs(static_cast<double>(x)));
    for (size_t i = 0; i < g_whole.size(); ++i) CHECK_CLOSE(g_whole[i], g_parts[i], 0, 1e-5 * gmax);
  }
}

// Backward accumulates: two micro-batches give the sum of their gradients.
void test_accumulation() {
  const ps::ModelSpec s = spec(Variant::Tied);
  const Weights w = random_weights(s, 81);
  auto e = engine(s, w);
  e->setup_full();
  const ps::Batch b1 = random_batch(2, 8, s.vocab_size, 1), b2 = random_batch(1, 11, s.vocab_size, 2);
  const std::string n = "model.embed_tokens.weight";
  e->forward_backward(b1, 0.5f);
  const auto g1 = e->get_gradient(n);
  e->zero_gradients();
  e->forward_backward(b2, 0.25f);
  const auto g2 = e->get_gradient(n);
  e->zero_gradients();
  e->forward_backward(b1, 0.5f);
  e->forward_backward(b2, 0.25f);
  const auto g12 = e->get_gradient(n);
  for (size_t i = 0; i < g12.size(); ++i) CHECK_CLOSE(g12[i], static_cast<double>(g1[i]) + g2[i], 1e-6, 1e-9);
}

template <typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    pstest::fail(__FILE__, __LINE__, "expected an error containing \"" + needle + "\"");
  } catch (const ps::Error& err) {
    if (std::string(err.what()).find(needle) == std::string::npos)
      pstest::fail(__FILE__, __LINE__, "error \"" + std::string(err.what()) + "\" lacks \"" + needle + "\"");
  }
}

void test_errors() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 91);
  {
    ps::Engine e(s, ps::EngineOptions{});
    const ps::Batch b = random_batch(1, 4, s.vocab_size, 1);
    expect_error([&] { e.evaluate(b); }, "model.embed_tokens.weight");
    expect_error([&] { e.set_weight("model.norm.weight", w.at("lm_head.weight").data(), 7); }, "model.norm.weight");
    expect_error([&] { e.set_weight("nope", nullptr, 0); }, "nope");
  }
  auto e = engine(s, w);
  ps::Batch b = random_batch(1, 4, s.vocab_size, 1);
  b.input_ids[2] = s.vocab_size;
  expect_error([&] { e->evaluate(b); }, "batch.inputIds[2]");
  b = random_batch(1, 4, s.vocab_size, 1);
  b.labels.pop_back();
  expect_error([&] { e->evaluate(b); }, "batch.labels");
  b = random_batch(1, 4, s.vocab_size, 1);
  b.positions[1] = -3;
  expect_error([&] { e->evaluate(b); }, "batch.positions[1]");
  expect_error([&] { e->forward_backward(random_batch(1, 4, s.vocab_size, 1), 1.0f); }, "setupLora");
  ps::LoraOptions o = all_targets_lora(2, 4.0f, 0.0f, 1);
  o.targets = {"q_proj", "lm_head"};
  expect_error([&] { e->setup_lora(o); }, "lm_head");
  o.targets = {"q_proj"};
  o.layers = std::vector<int>{0, 5};
  expect_error([&] { e->setup_lora(o); }, "layer 5");
  o.layers.reset();
  o.rank = 0;
  expect_error([&] { e->setup_lora(o); }, "rank");
  o.rank = 2;
  e->setup_lora(o);
  expect_error([&] { e->setup_full(); }, "already");
  ps::ModelSpec bad = s;
  bad.num_kv_heads = 3;
  expect_error([&] { ps::Engine x(bad, ps::EngineOptions{}); }, "num_key_value_heads");
}

// layers_to_transform and a target subset adapt exactly those linears.
void test_lora_selection() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 92);
  auto e = engine(s, w);
  ps::LoraOptions o = all_targets_lora(3, 6.0f, 0.0f, 1);
  o.targets = {"v_proj", "q_proj"};
  o.layers = std::vector<int>{1};
  e->setup_lora(o);
  const std::vector<std::string> names = trainable_names(*e);
  const std::vector<std::string> want = {
      "model.layers.1.self_attn.q_proj.lora_A.weight", "model.layers.1.self_attn.q_proj.lora_B.weight",
      "model.layers.1.self_attn.v_proj.lora_A.weight", "model.layers.1.self_attn.v_proj.lora_B.weight"};
  CHECK(names == want);
  for (const auto& p : e->parameters()) {
    if (p.name == "model.layers.1.self_attn.v_proj.lora_A.weight") CHECK((p.shape == std::vector<int64_t>{3, 16}));
    if (p.name == "model.layers.1.self_attn.v_proj.lora_B.weight") CHECK((p.shape == std::vector<int64_t>{8, 3}));
  }
  randomize_lora_b(*e, 0.2, 3);
  const ps::Batch b = random_batch(2, 8, s.vocab_size, 4);
  check_gradients(*e, b, 0, names, {names[0], names[3]}, "lora q,v layer 1");
}

}  // namespace

int main() {
  try {
    for (Variant v : kVariants) test_forward_matches_reference(v);
    test_rslora_scale();
    for (Variant v : kVariants) test_lora_gradients(v, 0.0f);
    test_lora_gradients(Variant::Llama, 0.25f);
    test_lora_gradients(Variant::Qwen3, 0.25f);
    for (Variant v : kVariants) test_full_gradients(v);
    test_zero_b_is_base_model();
    test_lora_init_distribution();
    test_checkpointing_identical();
    test_determinism();
    test_padding_and_packing();
    test_accumulation();
    test_errors();
    test_lora_selection();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_model");
}
