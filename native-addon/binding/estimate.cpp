// addon.estimateMemory(spec, options): the core's one memory formula.
#include "binding.h"
#include "convert.h"
#include "engine.h"
#include "memory_estimate.h"

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
  else if (method == "prompt") opts.method = ps::Method::Prompt;
  else if (method == "prefix") opts.method = ps::Method::Prefix;
  else type_error(env, "method must be lora, full, frozen, prompt or prefix (got " + method + ")");
  opts.batch_size = int_field(o, "batchSize");
  opts.seq_len = int_field(o, "seqLen");
  opts.gradient_checkpointing = bool_field(o, "gradientCheckpointing");
  // threads: the engine's CPU threads (absent: the hardware's, as an engine takes them)
  Napi::Value tv = o.Get("threads");
  if (!tv.IsUndefined() && !tv.IsNull()) {
    opts.threads = int_field(o, "threads");
    if (opts.threads < 1) type_error(env, "threads must be at least 1");
  }
  opts.optimizer = optimizer_kind(env, string_field(o, "optimizer"));
  opts.quantization = quantization_from(env, o.Get("quantization"));
  // Under quantization a 16-bit embedding / lm_head stays 16-bit: the estimate needs the stored dtype.
  Napi::Value wd = o.Get("weightDType");
  if (wd.IsString()) {
    opts.weight_dtype = dtype_from(env, wd.As<Napi::String>().Utf8Value());
    if (opts.weight_dtype == ps::DType::U8) type_error(env, "weightDType must be F32, F16 or BF16 (got U8)");
  }
  Napi::Value lv = o.Get("lora");
  if (lv.IsObject()) {
    Napi::Object l = lv.As<Napi::Object>();
    opts.lora.rank = int_field(l, "rank");
    opts.lora.targets = string_list(env, l.Get("targets"), "lora.targets");
    opts.lora.layers = layer_list(env, l.Get("layers"));
    Napi::Value d = l.Get("dropout");
    if (d.IsNumber()) opts.lora.dropout = d.As<Napi::Number>().FloatValue();
    opts.lora.dora = optional_bool_field(env, l, "dora");
  } else if (opts.method == ps::Method::Lora) {
    type_error(env, "options.lora is required for method 'lora'");
  }
  // prompt: {numVirtualTokens}; prefix: {numVirtualTokens, encoderHiddenSize: number | null}
  if (opts.method == ps::Method::Prompt) {
    Napi::Value pv = o.Get("prompt");
    if (!pv.IsObject()) type_error(env, "options.prompt ({numVirtualTokens}) is required for method 'prompt'");
    opts.prompt.num_virtual_tokens = int_field(pv.As<Napi::Object>(), "numVirtualTokens");
  } else if (opts.method == ps::Method::Prefix) {
    Napi::Value pv = o.Get("prefix");
    if (!pv.IsObject())
      type_error(env, "options.prefix ({numVirtualTokens, encoderHiddenSize}) is required for method 'prefix'");
    Napi::Object p = pv.As<Napi::Object>();
    opts.prefix.num_virtual_tokens = int_field(p, "numVirtualTokens");
    Napi::Value enc = p.Get("encoderHiddenSize");
    if (enc.IsNumber()) {
      opts.prefix.encoder_hidden_size = int_field(p, "encoderHiddenSize");
      if (opts.prefix.encoder_hidden_size < 1)
        type_error(env, "prefix.encoderHiddenSize must be at least 1, or null for no projection");
    } else if (!enc.IsNull() && !enc.IsUndefined()) {
      type_error(env, "prefix.encoderHiddenSize must be a number or null");
    }
  }
  // device / precision: where the run computes ('cpu' when absent) and its
  // precision ('fp32' when absent); a CUDA device adds its own memory.
  Napi::Value dv = o.Get("device"), pv = o.Get("precision");
  if (!dv.IsUndefined() && !dv.IsNull() && !dv.IsString()) type_error(env, "field 'device' must be 'cpu', 'cuda' or 'cuda:N'");
  if (!pv.IsUndefined() && !pv.IsNull() && !pv.IsString()) type_error(env, "field 'precision' must be 'fp32', 'bf16' or 'auto'");
  const std::string device = dv.IsString() ? dv.As<Napi::String>().Utf8Value() : "cpu";
  const std::string precision = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "fp32";
  // bf16 on a GPU keeps activations in bf16 (an invalid device is refused below)
  opts.bf16_activations = precision == "bf16" && device.rfind("cuda", 0) == 0;
  ps::MemoryEstimate m;
  ps::DeviceMemoryEstimate dm;
  try {
    m = ps::estimate_memory(spec, opts);
    dm = ps::estimate_device_memory(spec, opts, device, precision);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("weightBytes", static_cast<double>(m.weight_bytes));
  r.Set("quantizedBytes", static_cast<double>(m.quantized_bytes));
  r.Set("quantizedParams", static_cast<double>(m.quantized_params));
  r.Set("gradientBytes", static_cast<double>(m.gradient_bytes));
  r.Set("optimizerBytes", static_cast<double>(m.optimizer_bytes));
  r.Set("activationBytes", static_cast<double>(m.activation_bytes));
  r.Set("deviceBytes", static_cast<double>(dm.total()));
  Napi::Object parts = Napi::Object::New(env);
  parts.Set("contextBytes", static_cast<double>(dm.context_bytes));
  parts.Set("workspaceBytes", static_cast<double>(dm.workspace_bytes));
  parts.Set("weightChunkBytes", static_cast<double>(dm.weight_chunk_bytes));
  parts.Set("bf16CopyBytes", static_cast<double>(dm.bf16_copy_bytes));
  parts.Set("loraPartialsBytes", static_cast<double>(dm.lora_partials_bytes));
  // the CPU threads' scratch (0 on a GPU)
  parts.Set("cpuAttentionBytes", static_cast<double>(dm.cpu.attention_bytes));
  parts.Set("cpuAttentionPartialsBytes", static_cast<double>(dm.cpu.attention_partials_bytes));
  parts.Set("cpuGemmBytes", static_cast<double>(dm.cpu.gemm_bytes));
  parts.Set("cpuWeightGemmBytes", static_cast<double>(dm.cpu.weight_gemm_bytes));
  r.Set("device", parts);
  // host RAM on a GPU (not in totalBytes: the budget there is the GPU's)
  r.Set("hostLoadBytes", static_cast<double>(dm.host_load_bytes));
  r.Set("totalBytes", static_cast<double>(m.total_bytes + dm.total()));
  r.Set("trainableParams", static_cast<double>(m.trainable_params));
  r.Set("totalParams", static_cast<double>(m.total_params));
  return r;
}

}  // namespace psb
