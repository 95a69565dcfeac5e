// A parsed model configuration: everything the engine needs to know about a
// Llama-family architecture, and nothing about files. The Node side turns
// config.json into this (electron/models/), the C++ tests and benchmarks fill
// it in directly.
#pragma once

#include <string>

namespace ps {

enum class RopeScaling { None, Linear, Llama3 };

struct ModelSpec {
  std::string architecture = "LlamaForCausalLM";
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;  // hidden_size / num_heads unless config.json says otherwise (Qwen3)
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_factor = 1.0f;               // linear and llama3
  float rope_low_freq_factor = 1.0f;      // llama3
  float rope_high_freq_factor = 4.0f;     // llama3
  int rope_original_max_position = 8192;  // llama3
  int max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2)
  bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)

  // Throws ps::Error naming the first inconsistent field.
  void validate() const;
};

}  // namespace ps
