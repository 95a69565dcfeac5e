// Tiny random Llama-family models for the model tests: a spec per
// architecture variant, random weights kept on the host (so an independent
// reference can read them), and batches with padding and packed sequences.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine.h"
#include "rng.h"

namespace tiny {

enum class Variant {
  Llama,       // GQA (4 query heads, 2 KV heads), untied embeddings
  Tied,        // tie_word_embeddings
  Qwen2,       // q/k/v biases, tied
  Qwen3,       // per-head q/k RMSNorm, head_dim (6) != hidden / heads (4)
  Llama3Rope,  // llama3 rope scaling with frequencies in all three bands
};

inline const char* variant_name(Variant v) {
  switch (v) {
    case Variant::Llama: return "llama";
    case Variant::Tied: return "tied";
    case Variant::Qwen2: return "qwen2";
    case Variant::Qwen3: return "qwen3";
    default: return "llama3-rope";
  }
}

inline ps::ModelSpec spec(Variant v) {
  ps::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 50;
  s.hidden_size = 16;
  s.intermediate_size = 24;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 4;
  s.rms_norm_eps = 1e-5f;
  s.rope_theta = 10000.0f;
  s.max_position_embeddings = 128;
  switch (v) {
    case Variant::Llama: break;
    case Variant::Tied: s.tie_word_embeddings = true; break;
    case Variant::Qwen2:
      s.architecture = "Qwen2ForCausalLM";
      s.attention_bias = true;
      s.tie_word_embeddings = true;
      s.rope_theta = 1000000.0f;
      s.rms_norm_eps = 1e-6f;
      break;
    case Variant::Qwen3:
      s.architecture = "Qwen3ForCausalLM";
      s.qk_norm = true;
      s.head_dim = 6;
      s.num_kv_heads = 1;  // 4 query heads share one KV head
      s.tie_word_embeddings = true;
      break;
    case Variant::Llama3Rope:
      // head_dim 8 and theta 100 give wavelengths 6.3, 20, 63, 199: with
      // original_max_position 64 and factors 1/4 they land in the high
      // (< 16), medium (16..64) and low (> 64) bands of the llama3 formula.
      s.head_dim = 8;
      s.num_heads = 2;
      s.num_kv_heads = 1;
      s.rope_theta = 100.0f;
      s.rope_scaling = ps::RopeScaling::Llama3;
      s.rope_factor = 8.0f;
      s.rope_low_freq_factor = 1.0f;
      s.rope_high_freq_factor = 4.0f;
      s.rope_original_max_position = 64;
      break;
  }
  return s;
}

using Weights = std::map<std::string, std::vector<float>>;

// Projections ~ N(0, 0.3^2) (large enough that every path matters),
// norms ~ 1 + N(0, 0.1^2), biases ~ N(0, 0.1^2).
inline Weights random_weights(const ps::ModelSpec& s, uint64_t seed) {
  Weights w;
  ps::Rng rng(seed);
  for (const auto& info : ps::expected_weights(s)) {
    size_t n = 1;
    for (auto d : info.shape) n *= static_cast<size_t>(d);
    std::vector<float> v(n);
    const bool norm = info.name.find("norm") != std::string::npos;
    const bool bias = info.name.find(".bias") != std::string::npos;
    for (auto& x : v) {
      const double z = rng.normal();
      x = static_cast<float>(norm ? 1.0 + 0.1 * z : bias ? 0.1 * z : 0.3 * z);
    }
    w[info.name] = std::move(v);
  }
  return w;
}

inline void set_all(ps::Engine& e, const Weights& w) {
  for (const auto& kv : w) e.set_weight(kv.first, kv.second.data(), kv.second.size());
}

// labels = input_ids (HF convention: the engine shifts), one segment per row.
inline ps::Batch random_batch(int B, int T, int V, uint64_t seed) {
  ps::Rng rng(seed);
  ps::Batch b;
  b.batch_size = B;
  b.seq_len = T;
  for (int r = 0; r < B; ++r)
    for (int t = 0; t < T; ++t) {
      const int id = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(V));
      b.input_ids.push_back(id);
      b.labels.push_back(id);
      b.segments.push_back(0);
      b.positions.push_back(t);
    }
  return b;
}

// Row 0: one full sequence. Row 1: a shorter sequence then padding (seg -1).
// Row 2: two packed sequences (segments 0 and 1, positions restarting) with
// the first label of each masked (-100), as a packing collator does.
inline ps::Batch ragged_batch(int T, int V, uint64_t seed) {
  ps::Batch b = random_batch(3, T, V, seed);
  const int len1 = T - 3;
  for (int t = len1; t < T; ++t) {
    b.input_ids[T + t] = 0;
    b.labels[T + t] = -100;
    b.segments[T + t] = -1;
    b.positions[T + t] = 0;
  }
  const int split = T / 2 - 1;
  for (int t = 0; t < T; ++t) {
    const size_t i = 2 * static_cast<size_t>(T) + t;
    b.segments[i] = t < split ? 0 : 1;
    b.positions[i] = t < split ? t : t - split;
    if (t == split) b.labels[i] = -100;
  }
  b.labels[2 * static_cast<size_t>(T) + 3] = -100;  // and a masked label inside a sequence
  return b;
}

inline ps::LoraOptions all_targets_lora(int rank, float alpha, float dropout, uint64_t seed) {
  ps::LoraOptions o;
  o.rank = rank;
  o.alpha = alpha;
  o.dropout = dropout;
  o.targets = ps::lora_target_names();
  o.seed = seed;
  return o;
}

// Sets every LoRA B to N(0, sd^2) so that A receives gradient too.
inline void randomize_lora_b(ps::Engine& e, double sd, uint64_t seed) {
  ps::Rng rng(seed);
  for (const auto& p : e.parameters()) {
    if (p.name.find("lora_B") == std::string::npos) continue;
    std::vector<float> v = e.get_tensor(p.name);
    for (auto& x : v) x = static_cast<float>(sd * rng.normal());
    e.set_tensor(p.name, v.data(), v.size());
  }
}

// The names of the engine's trainable tensors, in its order.
inline std::vector<std::string> trainable_names(ps::Engine& e) {
  std::vector<std::string> names;
  for (const auto& p : e.parameters())
    if (p.trainable) names.push_back(p.name);
  return names;
}

inline int64_t counted_tokens(const ps::Batch& b) {
  int64_t n = 0;
  for (int r = 0; r < b.batch_size; ++r)
    for (int t = 0; t + 1 < b.seq_len; ++t) {
      const size_t i = static_cast<size_t>(r) * b.seq_len + t;
      if (b.labels[i + 1] != -100 && b.segments[i] >= 0 && b.segments[i + 1] == b.segments[i]) ++n;
    }
  return n;
}

}  // namespace tiny
