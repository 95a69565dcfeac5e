// estimate_memory is the engine's own formula: for each configuration the
// engine's allocated weights, gradients + optimizer state and activation
// arena equal the estimate to the byte, and the parameter counts match both
// the engine's tensors and known model sizes.
#include <memory>

#include "check.h"
#include "smollm2_135m.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

struct Config {
  ps::Method method;
  int B, T;
  bool ckpt;
  std::vector<std::string> targets;
  std::optional<std::vector<int>> layers;
  int rank;
  float dropout;
  ps::OptimizerStep::Kind opt;
};

void check_config(Variant v, const Config& c) {
  const ps::ModelSpec s = spec(v);
  ps::MemoryEstimateOptions o;
  o.method = c.method;
  o.batch_size = c.B;
  o.seq_len = c.T;
  o.gradient_checkpointing = c.ckpt;
  o.optimizer = c.opt;
  o.lora.rank = c.rank;
  o.lora.targets = c.targets;
  o.lora.layers = c.layers;
  o.lora.dropout = c.dropout;
  const ps::MemoryEstimate est = ps::estimate_memory(s, o);

  ps::EngineOptions eo;
  eo.threads = 1;
  eo.gradient_checkpointing = c.ckpt;
  ps::Engine e(s, eo);
  set_all(e, random_weights(s, 1));
  if (c.method == ps::Method::Lora) {
    ps::LoraOptions lo;
    lo.rank = c.rank;
    lo.alpha = 2.0f * c.rank;
    lo.dropout = c.dropout;
    lo.targets = c.targets;
    lo.layers = c.layers;
    e.setup_lora(lo);
  } else if (c.method == ps::Method::Full) {
    e.setup_full();
  }
  const ps::Batch b = random_batch(c.B, c.T, s.vocab_size, 2);
  if (c.method == ps::Method::Frozen) {
    e.evaluate(b);
  } else {
    e.forward_backward(b, 0.01f);
    ps::OptimizerStep step;
    step.kind = c.opt;
    e.optimizer_step(step);
  }
  const ps::MemoryUsage u = e.memory();
  CHECK(u.weight_bytes == est.weight_bytes);
  CHECK(u.trainable_bytes == est.gradient_bytes + est.optimizer_bytes);
  CHECK(u.activation_bytes == est.activation_bytes);
  CHECK(est.total_bytes == est.weight_bytes + est.gradient_bytes + est.optimizer_bytes + est.activation_bytes);
  CHECK(u.peak_rss_bytes > 0);
  int64_t total = 0, trainable = 0;
  for (const auto& p : e.parameters()) {
    int64_t n = 1;
    for (auto d : p.shape) n *= d;
    total += n;
    if (p.trainable) trainable += n;
  }
  CHECK(est.total_params == total);
  CHECK(est.trainable_params == trainable);
  CHECK(est.weight_bytes == static_cast<uint64_t>(total) * 4);
  // A smaller batch fits in the arena already there: nothing is reallocated.
  e.evaluate(random_batch(1, 2, s.vocab_size, 3));
  CHECK(e.memory().activation_bytes == est.activation_bytes);
}

void test_configs() {
  const std::vector<std::string> all = ps::lora_target_names();
  const std::vector<std::string> qv = {"q_proj", "v_proj"};
  const auto adamw = ps::OptimizerStep::Kind::AdamW, sgd = ps::OptimizerStep::Kind::Sgd;
  const Config configs[] = {
      {ps::Method::Lora, 2, 9, false, all, std::nullopt, 4, 0.0f, adamw},
      {ps::Method::Lora, 2, 9, true, all, std::nullopt, 4, 0.0f, adamw},
      {ps::Method::Lora, 1, 13, false, qv, std::nullopt, 8, 0.1f, adamw},
      {ps::Method::Lora, 3, 5, true, {"down_proj", "o_proj"}, std::vector<int>{1}, 2, 0.05f, sgd},
      {ps::Method::Full, 2, 7, false, {}, std::nullopt, 0, 0.0f, adamw},
      {ps::Method::Full, 2, 7, true, {}, std::nullopt, 0, 0.0f, sgd},
      {ps::Method::Frozen, 4, 6, false, {}, std::nullopt, 0, 0.0f, adamw},
  };
  for (Variant v : {Variant::Llama, Variant::Qwen2, Variant::Qwen3})
    for (const auto& c : configs) check_config(v, c);
}

// The reserve call allocates the estimate up front.
void test_reserve() {
  const ps::ModelSpec s = spec(Variant::Llama);
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Lora;
  o.batch_size = 4;
  o.seq_len = 32;
  o.lora.rank = 8;
  o.lora.targets = {"q_proj", "v_proj"};
  ps::Engine e(s, ps::EngineOptions{});
  set_all(e, random_weights(s, 1));
  ps::LoraOptions lo;
  lo.rank = 8;
  lo.targets = o.lora.targets;
  e.setup_lora(lo);
  e.reserve_activations(4, 32);
  CHECK(e.memory().activation_bytes == ps::estimate_memory(s, o).activation_bytes);
}

// Evaluating with an adapter before any training uses the small evaluation
// plan; the first training step replaces it with the estimated training arena.
void test_eval_then_train() {
  const ps::ModelSpec s = spec(Variant::Qwen3);
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Lora;
  o.batch_size = 2;
  o.seq_len = 12;
  o.lora.rank = 4;
  o.lora.targets = ps::lora_target_names();
  ps::Engine e(s, ps::EngineOptions{});
  set_all(e, random_weights(s, 1));
  ps::LoraOptions lo;
  lo.rank = 4;
  lo.targets = o.lora.targets;
  e.setup_lora(lo);
  e.evaluate(random_batch(2, 12, s.vocab_size, 1));
  const uint64_t eval_bytes = e.memory().activation_bytes;
  CHECK(eval_bytes > 0);
  CHECK(eval_bytes < ps::estimate_memory(s, o).activation_bytes / 2);
  e.forward_backward(random_batch(2, 12, s.vocab_size, 1), 0.1f);
  CHECK(e.memory().activation_bytes == ps::estimate_memory(s, o).activation_bytes);
  // A larger evaluation batch grows the training arena (one arena per engine).
  e.evaluate(random_batch(3, 12, s.vocab_size, 1));
  o.batch_size = 3;
  CHECK(e.memory().activation_bytes == ps::estimate_memory(s, o).activation_bytes);
}

// SmolLM2-135M: 134,515,008 parameters (the Hugging Face model card's count),
// and LoRA r=16 on all seven linears of its 30 layers adds 16 * 30 * (sum of
// in + out) = 16 * 30 * (1152 + 768 + 768 + 1152 + 3 * 2112) = 4,884,480.
void test_known_sizes() {
  const ps::ModelSpec s = pstest::smollm2_135m();
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Frozen;
  CHECK(ps::estimate_memory(s, o).total_params == 134515008);
  o.method = ps::Method::Lora;
  o.lora.rank = 16;
  o.lora.targets = ps::lora_target_names();
  const ps::MemoryEstimate e = ps::estimate_memory(s, o);
  CHECK(e.trainable_params == 4884480);
  CHECK(e.total_params == 134515008 + 4884480);
  CHECK(e.gradient_bytes == 4884480ull * 4);
  CHECK(e.optimizer_bytes == 2 * 4884480ull * 4);
  o.gradient_checkpointing = true;
  CHECK(ps::estimate_memory(s, o).activation_bytes < e.activation_bytes);
  o.method = ps::Method::Full;
  o.gradient_checkpointing = false;
  CHECK(ps::estimate_memory(s, o).trainable_params == 134515008);
}

}  // namespace

int main() {
  try {
    test_configs();
    test_reserve();
    test_eval_then_train();
    test_known_sizes();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_estimate");
}
