// estimate_memory is the engine's own formula: for each configuration the
// engine's allocated weights, gradients + optimizer state and activation
// arena equal the estimate to the byte, and the parameter counts match both
// the engine's tensors and known model sizes.
#include <memory>

#include "check.h"
#include "error.h"
#include "memory_estimate.h"
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
  CHECK(eval_bytes < ps::estimate_memory(s, o).activation_bytes);
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
  // What one more layer keeps for backward, at 1 x 256 tokens. Its input (the
  // residual [256, 576]), the MLP's rstd [256], gate and up [256, 1536] each
  // and the LoRA H [256, 16] of gate/up/down:
  ps::ModelSpec fewer = s;
  fewer.num_layers -= 1;
  const uint64_t mlp_part = 256 * 576 * 4 + 256 * 4 + 2 * 256 * 1536 * 4 + 3 * 256 * 16 * 4;
  // and the attention block's: rstd [256], q [256, 576], k and v [256, 192],
  // the attention output [256, 576], lse [256 x 9 heads], the residual after
  // attention [256, 576] and the LoRA H of q/k/v/o.
  const uint64_t attention_part =
      256 * 4 + 256 * 576 * 4 + 2 * 256 * 192 * 4 + 256 * 576 * 4 + 256 * 9 * 4 + 256 * 576 * 4 + 4 * 256 * 16 * 4;
  CHECK(e.activation_bytes - ps::estimate_memory(fewer, o).activation_bytes == mlp_part + attention_part);
  // On a 4-bit base (QLoRA, memory first) the attention block's buffers are
  // one set all layers share, which backward refills by recomputing the block.
  ps::MemoryEstimateOptions q = o;
  q.quantization.type = ps::QuantizationOptions::Type::Nf4;
  CHECK(ps::estimate_memory(s, q).activation_bytes - ps::estimate_memory(fewer, q).activation_bytes == mlp_part);
  // A BF16 checkpoint: LoRA keeps the frozen base 16-bit where it is a matrix
  // (the 210 block linears, 106,168,320 values, and the tied embedding =
  // lm_head, 49152 x 576 = 28,311,552) and the 61 norms of 576 (35,136) fp32;
  // the adapter is fp32. The 16-bit head is read by the 16-bit GEMMs, so the
  // arena is the F32 checkpoint's, with or without a 4-bit base.
  ps::MemoryEstimateOptions h = o;
  h.weight_dtype = ps::DType::BF16;
  const uint64_t matrices = 106168320ull + 28311552ull, norms = 61 * 576;
  CHECK(matrices + norms == 134515008ull);
  const ps::MemoryEstimate eh = ps::estimate_memory(s, h);
  CHECK(eh.weight_bytes == 2 * matrices + 4 * norms + 4 * 4884480ull);  // 288,638,208
  CHECK(eh.activation_bytes == e.activation_bytes);
  ps::MemoryEstimateOptions hq = q;
  hq.weight_dtype = ps::DType::BF16;
  CHECK(ps::estimate_memory(s, hq).activation_bytes == ps::estimate_memory(s, q).activation_bytes);
  o.gradient_checkpointing = true;
  CHECK(ps::estimate_memory(s, o).activation_bytes < e.activation_bytes);
  o.method = ps::Method::Full;
  o.gradient_checkpointing = false;
  CHECK(ps::estimate_memory(s, o).trainable_params == 134515008);
  h.method = ps::Method::Full;  // fp32 master copies of everything, whatever the file stores
  CHECK(ps::estimate_memory(s, h).weight_bytes == 4 * 134515008ull);
}

// Prompt and prefix tuning (PEFT's prompt learning): the soft prompt's extra
// positions, the prefix's key/value buffers, the projection MLP's table and
// its gradients, with and without checkpointing, on an fp32 or a 4-bit base.
struct PromptConfig {
  ps::Method method;
  int B, T, nvt, enc;  // enc: prefix projection width (0: none)
  bool ckpt, nf4;
  ps::OptimizerStep::Kind opt;
};

void check_prompt_config(Variant v, const PromptConfig& c) {
  const ps::ModelSpec s = spec(v);
  ps::MemoryEstimateOptions o;
  o.method = c.method;
  o.batch_size = c.B;
  o.seq_len = c.T;
  o.gradient_checkpointing = c.ckpt;
  o.optimizer = c.opt;
  o.prompt.num_virtual_tokens = c.nvt;
  o.prefix.num_virtual_tokens = c.nvt;
  o.prefix.encoder_hidden_size = c.enc;
  ps::EngineOptions eo;
  eo.threads = 1;
  eo.gradient_checkpointing = c.ckpt;
  if (c.nf4) {
    o.quantization.type = ps::QuantizationOptions::Type::Nf4;
    o.quantization.blocksize = 32;
    eo.quantization = o.quantization;
  }
  const ps::MemoryEstimate est = ps::estimate_memory(s, o);
  ps::Engine e(s, eo);
  set_all(e, random_weights(s, 1));
  if (c.method == ps::Method::Prompt) {
    ps::PromptTuningOptions po;
    po.num_virtual_tokens = c.nvt;
    po.init.assign(static_cast<size_t>(c.nvt) * s.hidden_size, 0.1f);
    e.setup_prompt_tuning(po);
  } else {
    ps::PrefixTuningOptions po;
    po.num_virtual_tokens = c.nvt;
    po.projection = c.enc > 0;
    po.encoder_hidden_size = c.enc;
    e.setup_prefix_tuning(po);
  }
  e.forward_backward(random_batch(c.B, c.T, s.vocab_size, 2), 0.01f);
  ps::OptimizerStep step;
  step.kind = c.opt;
  e.optimizer_step(step);
  const ps::MemoryUsage u = e.memory();
  CHECK(u.weight_bytes == est.weight_bytes);
  CHECK(u.trainable_bytes == est.gradient_bytes + est.optimizer_bytes);
  CHECK(u.activation_bytes == est.activation_bytes);
  CHECK(est.total_bytes == est.weight_bytes + est.gradient_bytes + est.optimizer_bytes + est.activation_bytes);
  int64_t total = 0, trainable = 0;
  for (const auto& p : e.parameters()) {
    int64_t n = 1;
    for (auto d : p.shape) n *= d;
    total += n;
    if (p.trainable) trainable += n;
  }
  CHECK(est.total_params == total);
  CHECK(est.trainable_params == trainable);
  // A smaller batch, and evaluation, fit in the arena already there.
  e.evaluate(random_batch(1, 2, s.vocab_size, 3));
  e.forward_backward(random_batch(1, c.T, s.vocab_size, 4), 0.01f);
  CHECK(e.memory().activation_bytes == est.activation_bytes);
  // reserve_activations allocates the estimate up front.
  ps::Engine r(s, eo);
  set_all(r, random_weights(s, 1));
  if (c.method == ps::Method::Prompt) {
    ps::PromptTuningOptions po;
    po.num_virtual_tokens = c.nvt;
    po.init.assign(static_cast<size_t>(c.nvt) * s.hidden_size, 0.1f);
    r.setup_prompt_tuning(po);
  } else {
    ps::PrefixTuningOptions po;
    po.num_virtual_tokens = c.nvt;
    po.projection = c.enc > 0;
    po.encoder_hidden_size = c.enc;
    r.setup_prefix_tuning(po);
  }
  r.reserve_activations(c.B, c.T);
  if (r.memory().activation_bytes != est.activation_bytes)
    std::fprintf(stderr, "reserve %d %d %d %d %d %d %d: %llu vs %llu\n", (int)c.method, c.B, c.T, c.nvt, c.enc, c.ckpt, c.nf4,
                 (unsigned long long)r.memory().activation_bytes, (unsigned long long)est.activation_bytes);
  CHECK(r.memory().activation_bytes == est.activation_bytes);
}

void test_prompt_learning_configs() {
  const auto adamw = ps::OptimizerStep::Kind::AdamW, sgd = ps::OptimizerStep::Kind::Sgd;
  const PromptConfig configs[] = {
      {ps::Method::Prompt, 2, 9, 3, 0, false, false, adamw},
      {ps::Method::Prompt, 3, 5, 4, 0, true, false, sgd},
      {ps::Method::Prompt, 2, 7, 2, 0, false, true, adamw},
      {ps::Method::Prefix, 2, 9, 3, 0, false, false, adamw},
      {ps::Method::Prefix, 3, 6, 5, 0, true, false, adamw},
      {ps::Method::Prefix, 2, 7, 4, 10, false, false, adamw},
      {ps::Method::Prefix, 2, 7, 4, 10, true, true, sgd},
      {ps::Method::Prefix, 2, 5, 3, 0, false, true, adamw},
  };
  for (Variant v : {Variant::Llama, Variant::Qwen3})
    for (const auto& c : configs) check_prompt_config(v, c);
}

// SmolLM2-135M (hidden 576, 30 layers, 3 KV heads x 64): prompt tuning with
// 20 tokens trains 20 x 576; prefix tuning's table is 20 x (30 x 2 x 192);
// with projection (encoder_hidden_size 512) PEFT's MLP over token_dim 192:
// 20*192 + 512*192 + 512 + 11520*512 + 11520.
void test_prompt_learning_sizes() {
  const ps::ModelSpec s = pstest::smollm2_135m();
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Prompt;
  o.prompt.num_virtual_tokens = 20;
  const ps::MemoryEstimate p = ps::estimate_memory(s, o);
  CHECK(p.trainable_params == 11520);
  CHECK(p.total_params == 134515008 + 11520);
  o.method = ps::Method::Prefix;
  o.prefix.num_virtual_tokens = 20;
  CHECK(ps::estimate_memory(s, o).trainable_params == 230400);
  o.prefix.encoder_hidden_size = 512;
  const ps::MemoryEstimate q = ps::estimate_memory(s, o);
  CHECK(q.trainable_params == 20 * 192 + 512 * 192 + 512 + 11520 * 512 + 11520);
  // Prompt tuning's arena is the frozen-structure arena of seq + nvt rows:
  // one more position per row costs what one more token of sequence costs.
  ps::MemoryEstimateOptions a;
  a.method = ps::Method::Prompt;
  a.prompt.num_virtual_tokens = 20;
  a.seq_len = 236;
  ps::MemoryEstimateOptions b = a;
  b.prompt.num_virtual_tokens = 1;
  b.seq_len = 255;
  CHECK(ps::estimate_memory(s, a).activation_bytes == ps::estimate_memory(s, b).activation_bytes);
  o.prefix.num_virtual_tokens = 0;
  bool threw = false;
  try {
    ps::estimate_memory(s, o);
  } catch (const ps::Error&) {
    threw = true;
  }
  CHECK(threw);
}

}  // namespace

// The CUDA device's own memory (estimate_device_memory), by hand for
// SmolLM2-135M (V 49152, D 576, F 1536, tied embedding), LoRA r16 on all
// seven linears: the 512 MiB context allowance and the 32 MiB cuBLASLt
// workspace on any CUDA device; the widened chunk of a 4-bit / 16-bit weight
// (4 Mi values, whole multiples of 64 rows); under bf16 two operand copies of
// the largest operand (rows padded to 8 values, at most 32 Mi values each);
// the fused LoRA kernels' partial sums (lora_fused_plan.h), at their largest
// for gate/up [1536 x 576]: at 1 x 256 rows, 8 row tiles of 32 = 8 row
// groups and 12 column groups of 128 (dH 12 x 256 x 16 + dB 8 x 1536 x 16
// + dA 8 x 16 x 576 = 319,488 floats = 1,277,952 bytes; q/o need 167,936,
// down 290,816); at 1 x 2048, 64 tiles in 32 groups of 2: 12 x 2048 x 16 +
// 32 x 1536 x 16 + 32 x 16 x 576 = 1,474,560 floats = 5,898,240 bytes.
// The CPU adds only its threads' scratch (test_cpu_scratch.cpp holds it
// against what the Workspaces hold); its attention part by hand at 1 x 256
// tokens, 3 kv heads of 64, 4 threads: one packed K or V is 1 x 3 x 256 x 64
// floats = 196,608 bytes; three of them and 4 threads' unit scratch of
// 3 x 64 x 64 + 2 x 64 x 64 + 4 x 64 = 20,736 floats (82,944 bytes) = 921,600;
// the partials 2 x 4 x 196,608 = 1,572,864.
void test_device_memory() {
  const ps::ModelSpec s = pstest::smollm2_135m();
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Lora;
  o.lora.rank = 16;
  o.lora.targets = ps::lora_target_names();
  o.seq_len = 256;
  const uint64_t MiB = 1 << 20;
  o.threads = 4;
  for (const char* p : {"fp32", "bf16", "auto"}) {
    const ps::DeviceMemoryEstimate cpu = ps::estimate_device_memory(s, o, "cpu", p);
    CHECK(cpu.context_bytes == 0 && cpu.workspace_bytes == 0 && cpu.weight_chunk_bytes == 0 && cpu.bf16_copy_bytes == 0 &&
          cpu.lora_partials_bytes == 0);
    CHECK(cpu.cpu.attention_bytes == 921600ull);
    CHECK(cpu.cpu.attention_partials_bytes == 1572864ull);
    CHECK(cpu.cpu.gemm_bytes > 0 && cpu.cpu.weight_gemm_bytes == 0);  // fp32 weights: no 4-bit / 16-bit GEMM
    CHECK(cpu.total() == cpu.cpu.total());
    CHECK(ps::estimate_device_memory(s, o, "", p).total() == cpu.total());
  }
  o.threads = 0;
  // fp32 weights, fp32 products: nothing widened, no copies.
  ps::DeviceMemoryEstimate d = ps::estimate_device_memory(s, o, "cuda:1", "fp32");
  CHECK(d.context_bytes == 512 * MiB);
  CHECK(d.workspace_bytes == 32 * MiB);
  CHECK(d.weight_chunk_bytes == 0 && d.bf16_copy_bytes == 0);
  CHECK(d.lora_partials_bytes == 1277952ull);
  CHECK(d.total() == 570425344ull + 1277952ull);
  // bf16 ("auto" counts as bf16) at 1 x 256: the largest operand is the fp32
  // tied embedding as lm_head, 49152 x 576 = 28,311,552 values (the logits
  // slice is 256 x 49152 = 12,582,912): two bf16 copies of it.
  d = ps::estimate_device_memory(s, o, "cuda", "auto");
  CHECK(d.bf16_copy_bytes == 2ull * 28311552 * 2);
  CHECK(d.total() == 683671552ull + 1277952ull);
  CHECK(ps::estimate_device_memory(s, o, "cuda", "bf16").total() == d.total());
  // A BF16 checkpoint at 1 x 2048: the 16-bit head is widened 7232 rows at a
  // time (4 Mi / 576 = 7281 rows, down to a multiple of 64): 7232 x 576 x 4 =
  // 16,662,528 bytes; the [2048, 49152] logits exceed the copy bound.
  ps::MemoryEstimateOptions h = o;
  h.weight_dtype = ps::DType::BF16;
  h.seq_len = 2048;
  d = ps::estimate_device_memory(s, h, "cuda", "bf16");
  CHECK(d.weight_chunk_bytes == 16662528ull);
  CHECK(d.bf16_copy_bytes == 2ull * (32ull << 20) * 2);
  CHECK(d.lora_partials_bytes == 5898240ull);
  CHECK(d.total() == 721305600ull + 5898240ull);
  CHECK(ps::estimate_device_memory(s, h, "cuda", "fp32").total() == 570425344ull + 16662528ull + 5898240ull);
  // QLoRA on the F32 file: the largest 4-bit linear is 1536 x 576 (gate/up; down
  // is 576 x 1536), widened whole: 3,538,944 bytes; the fp32 embedding is read as is.
  ps::MemoryEstimateOptions q = o;
  q.quantization.type = ps::QuantizationOptions::Type::Nf4;
  CHECK(ps::estimate_device_memory(s, q, "cuda:0", "fp32").weight_chunk_bytes == 1536ull * 576 * 4);
  CHECK(ps::estimate_device_memory(s, q, "cuda:0", "fp32").total() == 573964288ull + 1277952ull);
  // Host RAM of a GPU run's load (host_load_bytes, not in total()): none for an F32
  // file without quantization (uploaded from the mapping); a 16-bit file widens
  // its fp32-held tensors (the norms, 576 values: 2,304 bytes) through the stage,
  // its linears and embedding are uploaded as stored; quantizing, the largest
  // linear's fp32 copy (884,736 values: 3,538,944 bytes) and its 4-bit codes
  // before upload (442,368 code bytes, 13,824 absmax codes, 54 nested scales and
  // the offset: 456,412 bytes), with the fp32 absmax the double quantization
  // holds meanwhile (13,824 x 4 = 55,296 bytes). The CPU: 0 (its run's peak holds the load's).
  CHECK(ps::estimate_device_memory(s, o, "cuda", "fp32").host_load_bytes == 0);
  CHECK(ps::estimate_device_memory(s, h, "cuda", "bf16").host_load_bytes == 2304ull);
  CHECK(ps::estimate_device_memory(s, q, "cuda", "fp32").host_load_bytes == 3538944ull + 456412ull + 55296ull);
  ps::MemoryEstimateOptions qh = q;
  qh.weight_dtype = ps::DType::BF16;
  CHECK(ps::estimate_device_memory(s, qh, "cuda", "fp32").host_load_bytes == 3538944ull + 456412ull + 55296ull + 2304ull);
  CHECK(ps::estimate_device_memory(s, qh, "cpu", "fp32").host_load_bytes == 0);
  // Prompt tuning has no LoRA partials.
  ps::MemoryEstimateOptions pt = o;
  pt.method = ps::Method::Prompt;
  pt.prompt.num_virtual_tokens = 20;
  CHECK(ps::estimate_device_memory(s, pt, "cuda", "fp32").lora_partials_bytes == 0);
  // The CPU estimate is the engine's formula alone (the device term is separate).
  CHECK(ps::estimate_memory(s, o).total_bytes == ps::estimate_memory(s, o).weight_bytes +
                                                     ps::estimate_memory(s, o).gradient_bytes +
                                                     ps::estimate_memory(s, o).optimizer_bytes +
                                                     ps::estimate_memory(s, o).activation_bytes);
  bool threw = false;
  try {
    ps::estimate_device_memory(s, o, "gpu", "fp32");
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("unknown device \"gpu\"") != std::string::npos;
  }
  CHECK(threw);
  threw = false;
  try {
    ps::estimate_device_memory(s, o, "cuda", "fp16");
  } catch (const ps::Error& e) {
    threw = std::string(e.what()).find("unknown precision \"fp16\"") != std::string::npos;
  }
  CHECK(threw);
  threw = false;
  try {
    ps::estimate_device_memory(s, o, "cuda:x", "fp32");
  } catch (const ps::Error&) {
    threw = true;
  }
  CHECK(threw);
}

// A batch from a form (1e9) is refused by name, not multiplied into an int
// that wraps (it once came out as 16,777,149.7 TiB); the limit itself is
// accepted, and prompt tuning's virtual tokens count toward it.
void test_tokens_per_step_limit() {
  const ps::ModelSpec s = pstest::smollm2_135m();
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Lora;
  o.lora.rank = 16;
  o.lora.targets = ps::lora_target_names();
  auto refusal = [&]() -> std::string {
    try {
      ps::estimate_memory(s, o);
    } catch (const ps::Error& e) {
      return e.what();
    }
    return "";
  };
  o.batch_size = 1000000000;
  o.seq_len = 256;
  const std::string big = refusal();
  CHECK(big.find("batch size 1000000000 x sequence length 256 = 256000000000 tokens per step") != std::string::npos);
  CHECK(big.find("lower the batch size or the sequence length") != std::string::npos);
  o.batch_size = 65536;  // x 256 = 2^24: the largest step
  CHECK(refusal().empty());
  const uint64_t at_limit = ps::estimate_memory(s, o).activation_bytes;
  o.batch_size = 1;
  const double one = static_cast<double>(ps::estimate_memory(s, o).activation_bytes);
  o.batch_size = 2;
  const double per_row = static_cast<double>(ps::estimate_memory(s, o).activation_bytes) - one;
  // per-row storage all the way up (within 1%), not a wrapped count
  CHECK_CLOSE(static_cast<double>(at_limit), one + 65535 * per_row, 0.01, 0.0);
  o.batch_size = 65536;
  o.method = ps::Method::Prompt;
  o.prompt.num_virtual_tokens = 20;
  CHECK(refusal().find("(+ 20 virtual tokens) = 18087936 tokens per step") != std::string::npos);
}

int main() {
  try {
    test_tokens_per_step_limit();
    test_configs();
    test_reserve();
    test_eval_then_train();
    test_known_sizes();
    test_prompt_learning_configs();
    test_prompt_learning_sizes();
    test_device_memory();
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_estimate");
}
