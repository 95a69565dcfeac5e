#include "memory_estimate.h"

#include "error.h"
#include "methods/lora.h"
#include "model/tensor_names.h"

namespace ps {

PlanConfig make_plan_config(const ModelDims& d, Method method, bool train, int rows, bool checkpoint,
                            const int lora_ranks[kNumModules], bool lora_dropout) {
  PlanConfig c;
  c.dims = d;
  c.rows = rows;
  c.train = train && method != Method::Frozen;
  c.checkpoint = c.train && checkpoint;
  if (method == Method::Lora) {
    for (int m = 0; m < kNumModules; ++m) c.lora_rank[m] = lora_ranks[m];
    c.lora_dropout = lora_dropout && c.train;
  }
  return c;
}

MemoryEstimate estimate_memory(const ModelSpec& raw, const MemoryEstimateOptions& o) {
  const ModelSpec spec = resolve_spec(raw);
  const ModelDims d(spec);
  if (o.batch_size < 1 || o.seq_len < 1)
    throw Error("memory estimate: batch size and sequence length must be at least 1");
  int64_t base = 0;
  for (const auto& w : expected_weights(spec)) {
    int64_t n = 1;
    for (int64_t s : w.shape) n *= s;
    base += n;
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
  const int rows = o.batch_size * o.seq_len;
  const ActivationPlan plan(make_plan_config(d, o.method, true, rows, o.gradient_checkpointing, ranks,
                                             o.lora.dropout > 0));
  MemoryEstimate e;
  e.total_params = base + adapter;
  e.trainable_params = trainable;
  e.weight_bytes = static_cast<uint64_t>(base + adapter) * sizeof(float);
  e.gradient_bytes = static_cast<uint64_t>(trainable) * sizeof(float);
  e.optimizer_bytes = o.method != Method::Frozen && o.optimizer == OptimizerStep::Kind::AdamW
                          ? 2 * e.gradient_bytes
                          : 0;
  e.activation_bytes = plan.bytes();
  e.total_bytes = e.weight_bytes + e.gradient_bytes + e.optimizer_bytes + e.activation_bytes;
  return e;
}

}  // namespace ps
