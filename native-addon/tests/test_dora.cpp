// DoRA through the whole engine on tiny random models:
//  - the forward against the float64 reference, which forms W + s B A and
//    its row norms in full (the engine never does), for every architecture
//    variant (Qwen2's biases are not rescaled), before and after an
//    optimizer step (the norms follow the new A, B, m), on fp32, 16-bit and
//    4-bit bases;
//  - the magnitudes start at the base's row norms, so a new adapter is the
//    base model;
//  - gradients against finite differences with the norm held constant (PEFT
//    detaches it, so the true derivative through the norm is not what is
//    trained): a test backend replays the norm's inputs from the base point
//    while the magnitudes stay live; with and without dropout, with
//    checkpointing;
//  - checkpointing changes no bit; memory equals the estimate; decode gives
//    the logits of a whole forward.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <unistd.h>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "error.h"
#include "fd_check.h"
#include "model/half.h"
#include "reference_llama.h"
#include "tiny_model.h"

using namespace tiny;
namespace fs = std::filesystem;

namespace {

// The CPU backend, except that while `frozen` every DoRA norm is made from the
// inputs it had when frozen (A W^T, B, B A A^T, ||W||^2 of that adapter) and
// the CURRENT magnitudes: the norm is a constant, as in the trained objective.
class FrozenNormBackend : public ps::CpuBackend {
 public:
  explicit FrozenNormBackend(int threads) : ps::CpuBackend(threads) {}
  bool frozen = false;

  void dora_norm(int N, int r, float s, const float* w_sq, const float* PT, const float* B, const float* BC,
                 const float* m, float* inv_norm, float* factor) override {
    Inputs& in = kept_[inv_norm];
    if (!frozen || in.w_sq.empty()) {
      in.w_sq.assign(w_sq, w_sq + N);
      in.PT.assign(PT, PT + static_cast<size_t>(r) * N);
      in.B.assign(B, B + static_cast<size_t>(N) * r);
      in.BC.assign(BC, BC + static_cast<size_t>(N) * r);
    }
    ps::CpuBackend::dora_norm(N, r, s, in.w_sq.data(), in.PT.data(), in.B.data(), in.BC.data(), m, inv_norm,
                              factor);
  }

 private:
  struct Inputs {
    std::vector<float> w_sq, PT, B, BC;
  };
  std::map<const float*, Inputs> kept_;
};

ps::LoraOptions dora_options(int rank, float alpha, float dropout) {
  ps::LoraOptions o = all_targets_lora(rank, alpha, dropout, 5);
  o.dora = true;
  return o;
}

std::unique_ptr<ps::Engine> engine(const ps::ModelSpec& s, const Weights& w, bool ckpt = false,
                                   FrozenNormBackend** backend = nullptr) {
  ps::EngineOptions o;
  o.threads = 2;
  o.gradient_checkpointing = ckpt;
  o.seed = 7;
  auto be = std::make_unique<FrozenNormBackend>(2);
  if (backend) *backend = be.get();
  auto e = std::make_unique<ps::Engine>(s, o, std::move(be));
  set_all(*e, w);
  return e;
}

// Moves every magnitude off the row norm (x (1 + N(0, sd^2))), so m / n matters.
void perturb_magnitudes(ps::Engine& e, double sd, uint64_t seed) {
  ps::Rng rng(seed);
  for (const auto& p : e.parameters()) {
    if (p.name.find("lora_magnitude_vector") == std::string::npos) continue;
    std::vector<float> v = e.get_tensor(p.name);
    for (auto& x : v) x = static_cast<float>(x * (1.0 + sd * rng.normal()));
    e.set_tensor(p.name, v.data(), v.size());
  }
}

std::vector<std::string> names_with(ps::Engine& e, const char* part) {
  std::vector<std::string> out;
  for (const auto& p : e.parameters())
    if (p.name.find(part) != std::string::npos) out.push_back(p.name);
  return out;
}

void test_magnitudes_start_at_row_norms() {
  for (Variant v : {Variant::Llama, Variant::Qwen2}) {
    const ps::ModelSpec s = spec(v);
    const Weights w = random_weights(s, 31);
    auto e = engine(s, w);
    e->setup_lora(dora_options(2, 4.0f, 0.0f));
    const auto mags = names_with(*e, "lora_magnitude_vector");
    CHECK(mags.size() == static_cast<size_t>(7 * s.num_layers));
    for (const auto& name : mags) {
      const std::string module = name.substr(0, name.size() - std::strlen(".lora_magnitude_vector"));
      const auto& W = w.at(module + ".weight");
      const auto m = e->get_tensor(name);
      const size_t in = W.size() / m.size();
      for (size_t o = 0; o < m.size(); ++o) {
        double sq = 0;
        for (size_t i = 0; i < in; ++i) sq += static_cast<double>(W[o * in + i]) * W[o * in + i];
        CHECK_CLOSE(m[o], std::sqrt(sq), 1e-7, 0);  // the fp32 rounding of the exact norm
      }
    }
    // B = 0: the adapter is the base model (m / n is 1 up to the norm's rounding).
    auto base = engine(s, w);
    const ps::Batch b = random_batch(2, 7, s.vocab_size, 3);
    CHECK_CLOSE(e->evaluate(b).loss_sum, base->evaluate(b).loss_sum, 1e-6, 0);
  }
}

// The forward against the reference, and again after an optimizer step moved A, B and m.
void test_forward_matches_reference(Variant v) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 11);
  const ps::Batch batches[] = {random_batch(2, 9, s.vocab_size, 3), ragged_batch(10, s.vocab_size, 4)};
  for (const auto& b : batches) {
    auto e = engine(s, w);
    e->setup_lora(dora_options(2, 4.0f, 0.0f));  // scale 2
    randomize_lora_b(*e, 0.2, 6);
    perturb_magnitudes(*e, 0.3, 8);
    ref::Llama r(s, w);
    ref::mirror_lora(*e, r, 2.0);
    ref::Llama plain(s, w);  // the same A and B as plain LoRA: DoRA must differ from it
    ref::mirror_lora(*e, plain, 2.0);
    for (auto& kv : plain.lora) kv.second.magnitude.clear();
    const double want = r.loss_sum(b);
    CHECK(std::fabs(want - plain.loss_sum(b)) > 1e-3);
    CHECK_CLOSE(e->evaluate(b).loss_sum, want, 1e-6, 0);
    CHECK_CLOSE(e->forward_backward(b, 1e-2f).loss_sum, want, 1e-6, 0);
    ps::OptimizerStep step;
    step.lr = 1e-2f;
    e->optimizer_step(step);
    ref::Llama after(s, w);
    ref::mirror_lora(*e, after, 2.0);
    const double want_after = after.loss_sum(b);
    CHECK(std::fabs(want_after - want) > 1e-4);  // the step changed the model
    CHECK_CLOSE(e->evaluate(b).loss_sum, want_after, 1e-6, 0);
  }
}

// 16-bit and 4-bit bases: the norm of the base as the engine holds it.
void test_quantized_and_half_bases() {
  const ps::ModelSpec s = spec(Variant::Llama);
  Weights w = random_weights(s, 13);
  const ps::Batch b = random_batch(2, 8, s.vocab_size, 5);
  // 4-bit: the reference gets the dequantized linears the engine computes with.
  ps::EngineOptions q;
  q.threads = 2;
  q.quantization.type = ps::QuantizationOptions::Type::Nf4;
  auto e4 = std::make_unique<ps::Engine>(s, q);
  set_all(*e4, w);
  e4->setup_lora(dora_options(2, 4.0f, 0.0f));
  randomize_lora_b(*e4, 0.2, 6);
  perturb_magnitudes(*e4, 0.3, 8);
  Weights held = w;
  for (auto& kv : held)
    if (kv.first.find("_proj.weight") != std::string::npos) kv.second = e4->get_tensor(kv.first);
  ref::Llama r4(s, held);
  ref::mirror_lora(*e4, r4, 2.0);
  CHECK_CLOSE(e4->evaluate(b).loss_sum, r4.loss_sum(b), 1e-6, 0);
  // The magnitudes started at the 4-bit weights' norms, not the fp32 ones.
  auto fresh4 = std::make_unique<ps::Engine>(s, q);
  set_all(*fresh4, w);
  fresh4->setup_lora(dora_options(2, 4.0f, 0.0f));
  const auto m0 = fresh4->get_tensor("model.layers.0.self_attn.q_proj.lora_magnitude_vector");
  const auto& W4 = held.at("model.layers.0.self_attn.q_proj.weight");
  const size_t in = W4.size() / m0.size();
  double sq = 0;
  for (size_t i = 0; i < in; ++i) sq += static_cast<double>(W4[i]) * W4[i];
  CHECK_CLOSE(m0[0], std::sqrt(sq), 1e-7, 0);

  // 16-bit: a BF16 checkpoint's block linears are used as stored (HalfWeight).
  Weights truncated = w;
  // One file per process: two runs at once (helpers' CTests on one machine)
  // truncated each other's mapped file (SIGBUS / abort, 2 in 15 pairs).
  const fs::path file = fs::temp_directory_path() / ("ps_test_dora_bf16_" + std::to_string(::getpid()) + ".bin");
  std::vector<uint8_t> bytes(8, 0);
  std::vector<ps::WeightRef> refs;
  for (const auto& info : ps::expected_weights(s)) {
    auto& val = truncated[info.name];
    ps::WeightRef ref;
    ref.name = info.name;
    ref.file = file.string();
    ref.shape = info.shape;
    ref.dtype = ps::DType::BF16;
    while (bytes.size() % 8) bytes.push_back(0);
    ref.offset = bytes.size();
    for (auto& x : val) {
      uint32_t u;
      std::memcpy(&u, &x, 4);
      const uint16_t h = static_cast<uint16_t>(u >> 16);  // truncation: any bf16 pattern is a valid weight
      x = ps::bf16_to_f32(h);
      bytes.push_back(static_cast<uint8_t>(h & 0xFF));
      bytes.push_back(static_cast<uint8_t>(h >> 8));
    }
    refs.push_back(ref);
  }
  {
    std::ofstream f(file, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ps::EngineOptions o16;
  o16.threads = 2;
  ps::Engine e16(s, o16);
  e16.load_weights(refs);
  e16.setup_lora(dora_options(2, 4.0f, 0.0f));
  randomize_lora_b(e16, 0.2, 6);
  perturb_magnitudes(e16, 0.3, 8);
  ref::Llama r16(s, truncated);
  ref::mirror_lora(e16, r16, 2.0);
  CHECK_CLOSE(e16.evaluate(b).loss_sum, r16.loss_sum(b), 1e-6, 0);
  fs::remove(file);
}

// Finite differences of the engine's own loss with the norm held constant
// (FrozenNormBackend); tolerances as test_model.cpp's check_gradients.
void check_gradients(Variant v, float dropout, bool ckpt) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 21);
  FrozenNormBackend* be = nullptr;
  auto e = engine(s, w, ckpt, &be);
  e->setup_lora(dora_options(2, 4.0f, dropout));
  randomize_lora_b(*e, 0.2, 6);
  perturb_magnitudes(*e, 0.3, 8);
  const ps::Batch b = ragged_batch(8, s.vocab_size, 9);
  const std::vector<std::string> names = trainable_names(*e);
  const auto g = fd::gradients(*e, b, 3, names, counted_tokens(b));
  be->frozen = true;  // the inputs of every norm are those of this point
  const fd::Result r = fd::directional(*e, b, 3, names, g, 1e-3, 99);
  const std::string label = std::string("dora ") + variant_name(v) + (dropout > 0 ? " dropout" : "") +
                            (ckpt ? " checkpointing" : "");
  if (!pstest::close(r.fd, r.analytic, 1e-3, 1e-4 * r.scale))
    std::fprintf(stderr, "  %s: directional fd %.9g analytic %.9g (|g||u| %.3g)\n", label.c_str(), r.fd,
                 r.analytic, r.scale);
  CHECK(r.scale > 0);
  CHECK_CLOSE(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  for (const std::string n : {"model.layers.0.self_attn.q_proj.lora_magnitude_vector",
                              "model.layers.1.mlp.down_proj.lora_magnitude_vector",
                              "model.layers.0.self_attn.v_proj.lora_A.weight",
                              "model.layers.1.mlp.gate_proj.lora_B.weight"}) {
    for (size_t i : fd::largest(g.at(n), 3)) {
      const double want = g.at(n)[i];
      const double got = fd::element(*e, b, 3, n, i, 6e-3);
      if (!pstest::close(got, want, 1e-3, 1e-4))
        std::fprintf(stderr, "  %s: %s[%zu] fd %.9g analytic %.9g\n", label.c_str(), n.c_str(), i, got, want);
      CHECK_CLOSE(got, want, 1e-3, 1e-4);
    }
  }
  be->frozen = false;
}

// Without the freeze, finite differences see the path through the norm: the
// gradient of A or B is NOT the derivative of the loss. This keeps the test
// above honest (a freeze that did nothing would fail here's opposite).
void test_norm_is_detached() {
  const ps::ModelSpec s = spec(Variant::Llama);
  const Weights w = random_weights(s, 21);
  auto e = engine(s, w);
  e->setup_lora(dora_options(2, 4.0f, 0.0f));
  randomize_lora_b(*e, 0.5, 6);
  perturb_magnitudes(*e, 0.3, 8);
  const ps::Batch b = random_batch(2, 8, s.vocab_size, 9);
  const std::string n = "model.layers.1.self_attn.q_proj.lora_B.weight";
  const auto g = fd::gradients(*e, b, 3, {n}, counted_tokens(b));
  const size_t i = fd::largest(g.at(n), 1)[0];
  const double live = fd::element(*e, b, 3, n, i, 6e-3);
  CHECK(std::fabs(live - g.at(n)[i]) > 1e-2 * std::fabs(g.at(n)[i]));
}

void test_checkpointing_identical() {
  const ps::ModelSpec s = spec(Variant::Qwen2);
  const Weights w = random_weights(s, 41);
  const ps::Batch b = ragged_batch(9, s.vocab_size, 4);
  std::vector<std::vector<float>> grads[2];
  double loss[2];
  for (int ckpt = 0; ckpt < 2; ++ckpt) {
    auto e = engine(s, w, ckpt == 1);
    e->setup_lora(dora_options(2, 4.0f, 0.1f));
    randomize_lora_b(*e, 0.2, 6);
    loss[ckpt] = e->forward_backward(b, 0.1f).loss_sum;
    for (const auto& n : trainable_names(*e)) grads[ckpt].push_back(e->get_gradient(n));
  }
  CHECK(loss[0] == loss[1]);
  CHECK(grads[0].size() == grads[1].size());
  for (size_t i = 0; i < grads[0].size(); ++i)
    CHECK(std::memcmp(grads[0][i].data(), grads[1][i].data(), grads[0][i].size() * sizeof(float)) == 0);
}

void test_memory_equals_estimate() {
  const ps::ModelSpec s = spec(Variant::Llama);
  for (float dropout : {0.0f, 0.1f})
    for (bool ckpt : {false, true}) {
      ps::MemoryEstimateOptions o;
      o.method = ps::Method::Lora;
      o.batch_size = 2;
      o.seq_len = 9;
      o.gradient_checkpointing = ckpt;
      o.lora.rank = 4;
      o.lora.targets = {"q_proj", "v_proj", "down_proj"};
      o.lora.dropout = dropout;
      o.lora.dora = true;
      const ps::MemoryEstimate est = ps::estimate_memory(s, o);
      ps::MemoryEstimateOptions plain = o;
      plain.lora.dora = false;
      const ps::MemoryEstimate lora = ps::estimate_memory(s, plain);
      ps::EngineOptions eo;
      eo.threads = 1;
      eo.gradient_checkpointing = ckpt;
      ps::Engine e(s, eo);
      set_all(e, random_weights(s, 1));
      ps::LoraOptions lo = dora_options(4, 8.0f, dropout);
      lo.targets = o.lora.targets;
      e.setup_lora(lo);
      e.forward_backward(random_batch(2, 9, s.vocab_size, 2), 0.01f);
      e.optimizer_step(ps::OptimizerStep());
      const ps::MemoryUsage u = e.memory();
      CHECK(u.weight_bytes == est.weight_bytes);
      CHECK(u.trainable_bytes == est.gradient_bytes + est.optimizer_bytes);
      CHECK(u.activation_bytes == est.activation_bytes);
      // The magnitudes: one per output row of each adapted linear (q: Dq, v: Dkv, down: D).
      const int64_t outs = static_cast<int64_t>(s.num_layers) *
                           (s.num_heads * (s.hidden_size / s.num_heads) +
                            s.num_kv_heads * (s.hidden_size / s.num_heads) + s.hidden_size);
      CHECK(est.trainable_params == lora.trainable_params + outs);
      CHECK(est.activation_bytes > lora.activation_bytes);
      int64_t trainable = 0;
      for (const auto& p : e.parameters())
        if (p.trainable) trainable += p.shape.size() == 1 ? p.shape[0] : p.shape[0] * p.shape[1];
      CHECK(trainable == est.trainable_params);
    }
}

// Generation's decode (one token at a time, through the KV cache) gives the
// logits a whole-sequence forward gives: the reference's.
void test_decode_matches_reference() {
  const ps::ModelSpec s = spec(Variant::Qwen2);
  const Weights w = random_weights(s, 51);
  auto e = engine(s, w);
  e->setup_lora(dora_options(2, 4.0f, 0.0f));
  randomize_lora_b(*e, 0.2, 6);
  perturb_magnitudes(*e, 0.3, 8);
  ref::Llama r(s, w);
  ref::mirror_lora(*e, r, 2.0);
  const ps::Batch b = random_batch(1, 6, s.vocab_size, 7);
  const std::vector<double> want = r.logits(b);
  e->reset_cache(16);
  for (int t = 0; t < b.seq_len; ++t) {
    const std::vector<float> got = e->decode(&b.input_ids[t], 1);
    for (int k = 0; k < s.vocab_size; ++k)
      CHECK_CLOSE(got[k], want[static_cast<size_t>(t) * s.vocab_size + k], 1e-4, 1e-5);
  }
}

// A base weight written after setup (in place in the store): the norms follow it.
void test_base_weight_rewritten() {
  const ps::ModelSpec s = spec(Variant::Llama);
  Weights w = random_weights(s, 61);
  const ps::Batch b = random_batch(2, 7, s.vocab_size, 3);
  auto e = engine(s, w);
  e->setup_lora(dora_options(2, 4.0f, 0.0f));
  randomize_lora_b(*e, 0.2, 6);
  perturb_magnitudes(*e, 0.3, 8);
  e->evaluate(b);
  for (int round = 0; round < 2; ++round) {  // twice: the second write lands in memory the store owns
    auto& W = w.at("model.layers.0.self_attn.q_proj.weight");
    for (auto& x : W) x *= 3.0f;
    if (round == 0)
      e->set_weight("model.layers.0.self_attn.q_proj.weight", W.data(), W.size());
    else
      e->set_tensor("model.layers.0.self_attn.q_proj.weight", W.data(), W.size());
    ref::Llama r(s, w);
    ref::mirror_lora(*e, r, 2.0);
    CHECK_CLOSE(e->evaluate(b).loss_sum, r.loss_sum(b), 1e-6, 0);
  }
}

void test_setup_before_weights_is_refused() {
  const ps::ModelSpec s = spec(Variant::Llama);
  ps::Engine e(s, ps::EngineOptions());
  bool threw = false;
  try {
    e.setup_lora(dora_options(2, 4.0f, 0.0f));
  } catch (const ps::Error& err) {
    threw = std::string(err.what()).find("DoRA") != std::string::npos;
  }
  CHECK(threw);
  // Refused before anything was set up: plain LoRA still can be.
  e.setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
}

}  // namespace

int main() {
  test_magnitudes_start_at_row_norms();
  for (Variant v : {Variant::Llama, Variant::Tied, Variant::Qwen2, Variant::Qwen3, Variant::Llama3Rope})
    test_forward_matches_reference(v);
  test_quantized_and_half_bases();
  for (Variant v : {Variant::Llama, Variant::Qwen2, Variant::Qwen3}) {
    check_gradients(v, 0.0f, false);
    check_gradients(v, 0.2f, false);
  }
  check_gradients(Variant::Llama, 0.2f, true);
  test_norm_is_detached();
  test_checkpointing_identical();
  test_memory_equals_estimate();
  test_decode_matches_reference();
  test_base_weight_rewritten();
  test_setup_before_weights_is_refused();
  return pstest::finish("test_dora");
}
