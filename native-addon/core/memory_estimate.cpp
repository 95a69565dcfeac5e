#include "memory_estimate.h"

#include "error.h"
#include "methods/lora.h"
#include "methods/prefix_tuning.h"
#include "model/tensor_names.h"
#include "model/weights.h"

namespace ps {

PlanConfig make_plan_config(const ModelDims& d, Method method, bool train, int rows, bool checkpoint,
                            const int lora_ranks[kNumModules], bool lora_dropout,
                            const PrefixPlan& prefix) {
  PlanConfig c;
  c.dims = d;
  c.rows = rows;
  c.train = train && method != Method::Frozen;
  c.checkpoint = c.train && checkpoint;
  if (method == Method::Lora) {
    for (int m = 0; m < kNumModules; ++m) c.lora_rank[m] = lora_ranks[m];
    c.lora_dropout = lora_dropout && c.train;
  }
  if (method == Method::Prefix) {
    c.prefix_tokens = prefix.tokens;
    c.batch = prefix.batch;
    c.prefix_hidden = prefix.hidden;
  }
  return c;
}

MemoryEstimate estimate_memory(const ModelSpec& raw, const MemoryEstimateOptions& o) {
  const ModelSpec spec = resolve_spec(raw);
  const ModelDims d(spec);
  if (o.batch_size < 1 || o.seq_len < 1)
    throw Error("memory estimate: batch size and sequence length must be at least 1");
  const QuantizationOptions& q = o.quantization;
  if (q.enabled()) {
    nf4_check_blocksize(q.blocksize);
    if (o.method == Method::Full)
      throw Error("memory estimate: full fine-tuning cannot train a 4-bit base; use LoRA (QLoRA) or no quantization");
  }
  // A 16-bit checkpoint's frozen tensors stay 16-bit (WeightStore, keeps_16bit): under
  // quantization the embedding / lm_head, else also the block linears. The
  // 16-bit GEMMs read them as stored, so the arena holds nothing widened.
  // Full fine-tuning trains fp32 master copies of everything.
  const std::vector<ParameterInfo> weights = expected_weights(spec);
  const bool sixteen = (o.weight_dtype == DType::F16 || o.weight_dtype == DType::BF16) && o.method != Method::Full;
  auto held_16bit = [&](const std::string& name) { return sixteen && keeps_16bit(name, q.enabled()); };
  int64_t base = 0, quantized = 0;
  uint64_t base_bytes = 0, quantized_bytes = 0;
  for (const auto& w : weights) {
    int64_t n = 1;
    for (int64_t s : w.shape) n *= s;
    base += n;
    if (q.enabled() && is_quantized_linear(w.name)) {
      // The same per-tensor formula the store's 4-bit weights have (partial blocks included).
      const uint64_t b = nf4_resident_bytes(n, q.blocksize, q.double_quant);
      quantized += n;
      quantized_bytes += b;
      base_bytes += b;
    } else if (held_16bit(w.name)) {
      base_bytes += static_cast<uint64_t>(n) * sizeof(uint16_t);
    } else {
      base_bytes += static_cast<uint64_t>(n) * sizeof(float);
    }
  }
  int64_t adapter = 0, trainable = 0;
  int ranks[kNumModules] = {};
  if (o.method == Method::Lora) {
    if (o.lora.rank < 1) throw Error("memory estimate: LoRA rank must be at least 1");
    const LoraSelection sel(d, o.lora.targets, o.lora.layers);
    adapter = sel.params(d, o.lora.rank);
    trainable = adapter;
    bool any_layer = false;
    for (int l = 0; l < d.L; ++l) any_layer = any_layer || sel.layer[l];
    for (int m = 0; m < kNumModules; ++m) ranks[m] = sel.module[m] && any_layer ? o.lora.rank : 0;
  } else if (o.method == Method::Full) {
    trainable = base;
  }
  // Prompt tuning runs nvt more positions per row; prefix tuning adds its
  // prefix to every row's keys/values (and with projection the MLP's table).
  int virtual_rows = 0;
  PrefixPlan prefix;
  if (o.method == Method::Prompt) {
    const int nvt = o.prompt.num_virtual_tokens;
    if (nvt < 1) throw Error("memory estimate: prompt.numVirtualTokens must be at least 1");
    adapter = trainable = static_cast<int64_t>(nvt) * d.D;
    virtual_rows = nvt;
  } else if (o.method == Method::Prefix) {
    const int nvt = o.prefix.num_virtual_tokens, enc = o.prefix.encoder_hidden_size;
    if (nvt < 1) throw Error("memory estimate: prefix.numVirtualTokens must be at least 1");
    if (enc < 0) throw Error("memory estimate: prefix.encoderHiddenSize must be at least 1 (or null: no projection)");
    adapter = trainable = prefix_tuning_params(d, nvt, enc);
    prefix = {nvt, o.batch_size, enc};
  }
  const int rows = o.batch_size * (o.seq_len + virtual_rows);
  PlanConfig config = make_plan_config(d, o.method, true, rows, o.gradient_checkpointing, ranks,
                                       o.lora.dropout > 0, prefix);
  config.share_attention = q.enabled();
  const ActivationPlan plan(config);
  MemoryEstimate e;
  e.total_params = base + adapter;
  e.trainable_params = trainable;
  e.weight_bytes = base_bytes + static_cast<uint64_t>(adapter) * sizeof(float);
  e.quantized_bytes = quantized_bytes;
  e.quantized_params = quantized;
  e.gradient_bytes = static_cast<uint64_t>(trainable) * sizeof(float);
  e.optimizer_bytes = o.method != Method::Frozen && o.optimizer == OptimizerStep::Kind::AdamW
                          ? 2 * e.gradient_bytes
                          : 0;
  e.activation_bytes = plan.bytes();
  e.total_bytes = e.weight_bytes + e.gradient_bytes + e.optimizer_bytes + e.activation_bytes;
  return e;
}

}  // namespace ps
