// addon.estimateMemory(spec, options): the core's one memory formula.
#include "binding.h"
#include "convert.h"
#include "engine.h"

namespace psb {

Napi::Value EstimateMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ps::ModelSpec spec = spec_from(object_arg(info, 0, "spec"));
  Napi::Object o = object_arg(info, 1, "options");
  ps::MemoryEstimateOptions opts;
  std::string method = string_field(o, "method");
  if (method == "lora") opts.method = ps::Method::Lora;
  else if (method == "full") opts.method = ps::Method::Full;
  else if (method == "frozen") opts.method = ps::Method::Frozen;
  else type_error(env, "method must be lora, full or frozen (got " + method + ")");
  opts.batch_size = int_field(o, "batchSize");
  opts.seq_len = int_field(o, "seqLen");
  opts.gradient_checkpointing = bool_field(o, "gradientCheckpointing");
  opts.optimizer = optimizer_kind(env, string_field(o, "optimizer"));
  Napi::Value lv = o.Get("lora");
  if (lv.IsObject()) {
    Napi::Object l = lv.As<Napi::Object>();
    opts.lora.rank = int_field(l, "rank");
    opts.lora.targets = string_list(env, l.Get("targets"), "lora.targets");
    opts.lora.layers = layer_list(env, l.Get("layers"));
    Napi::Value d = l.Get("dropout");
    if (d.IsNumber()) opts.lora.dropout = d.As<Napi::Number>().FloatValue();
  } else if (opts.method == ps::Method::Lora) {
    type_error(env, "options.lora is required for method 'lora'");
  }
  ps::MemoryEstimate m;
  try {
    m = ps::estimate_memory(spec, opts);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("weightBytes", static_cast<double>(m.weight_bytes));
  r.Set("gradientBytes", static_cast<double>(m.gradient_bytes));
  r.Set("optimizerBytes", static_cast<double>(m.optimizer_bytes));
  r.Set("activationBytes", static_cast<double>(m.activation_bytes));
  r.Set("totalBytes", static_cast<double>(m.total_bytes));
  r.Set("trainableParams", static_cast<double>(m.trainable_params));
  r.Set("totalParams", static_cast<double>(m.total_params));
  return r;
}

}  // namespace psb
