#include "model/tensor_names.h"

#include <vector>

#include "engine.h"
#include "model/dims.h"

namespace ps {

const char* const kEmbedName = "model.embed_tokens.weight";
const char* const kNormName = "model.norm.weight";
const char* const kLmHeadName = "lm_head.weight";

namespace {
const char* const kModuleNames[kNumModules] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                               "gate_proj", "up_proj", "down_proj"};
}

const char* module_name(int module) { return kModuleNames[module]; }

int module_from_name(const std::string& name) {
  for (int m = 0; m < kNumModules; ++m)
    if (name == kModuleNames[m]) return m;
  return -1;
}

std::string layer_tensor_name(int layer, const std::string& suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

std::string module_path(int layer, int module) {
  const bool attn = module <= kO;
  return layer_tensor_name(layer, std::string(attn ? "self_attn." : "mlp.") + kModuleNames[module]);
}

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names(kModuleNames, kModuleNames + kNumModules);
  return names;
}

std::vector<ParameterInfo> expected_weights(const ModelSpec& raw) {
  const ModelSpec spec = resolve_spec(raw);
  const ModelDims d(spec);
  std::vector<ParameterInfo> out;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    out.push_back(ParameterInfo{std::move(name), std::move(shape), false});
  };
  add(kEmbedName, {d.V, d.D});
  const int64_t module_out[kNumModules] = {d.Dq, d.Dkv, d.Dkv, d.D, d.F, d.F, d.D};
  const int64_t module_in[kNumModules] = {d.D, d.D, d.D, d.Dq, d.D, d.D, d.F};
  for (int l = 0; l < d.L; ++l) {
    add(layer_tensor_name(l, "input_layernorm.weight"), {d.D});
    for (int m = kQ; m <= kO; ++m) {
      add(module_path(l, m) + ".weight", {module_out[m], module_in[m]});
      const bool bias = m == kO ? d.o_bias : d.qkv_bias;
      if (bias) add(module_path(l, m) + ".bias", {module_out[m]});
    }
    if (d.qk_norm) {
      add(layer_tensor_name(l, "self_attn.q_norm.weight"), {d.hd});
      add(layer_tensor_name(l, "self_attn.k_norm.weight"), {d.hd});
    }
    add(layer_tensor_name(l, "post_attention_layernorm.weight"), {d.D});
    for (int m = kGate; m <= kDown; ++m) add(module_path(l, m) + ".weight", {module_out[m], module_in[m]});
  }
  add(kNormName, {d.D});
  if (!d.tied) add(kLmHeadName, {d.V, d.D});
  return out;
}

}  // namespace ps
