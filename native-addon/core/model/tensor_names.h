// Hugging Face tensor names of a Llama-family checkpoint, and the engine's
// fixed order of the seven linear modules of a decoder layer.
#pragma once

#include <string>

namespace ps {

enum Module { kQ = 0, kK, kV, kO, kGate, kUp, kDown, kNumModules };

// "q_proj", ..., "down_proj" (PEFT target_modules names).
const char* module_name(int module);
// -1 when name is not one of the seven.
int module_from_name(const std::string& name);
// "model.layers.{l}.self_attn.q_proj" / "model.layers.{l}.mlp.gate_proj"
std::string module_path(int layer, int module);
// "model.layers.{l}." + suffix
std::string layer_tensor_name(int layer, const std::string& suffix);

extern const char* const kEmbedName;   // model.embed_tokens.weight
extern const char* const kNormName;    // model.norm.weight
extern const char* const kLmHeadName;  // lm_head.weight

}  // namespace ps
