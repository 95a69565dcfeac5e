// ModelSpec::validate: every size the engine divides or indexes by is checked
// here once, so the model code can trust the spec.
#include "model/spec.h"

#include <cmath>

#include "error.h"

namespace ps {

namespace {
void require(bool ok, const std::string& field, const std::string& what) {
  if (!ok) throw Error("model config: " + field + " " + what);
}
}  // namespace

void ModelSpec::validate() const {
  require(vocab_size > 0, "vocab_size", "must be a positive integer");
  require(hidden_size > 0, "hidden_size", "must be a positive integer");
  require(intermediate_size > 0, "intermediate_size", "must be a positive integer");
  require(num_layers > 0, "num_hidden_layers", "must be a positive integer");
  require(num_heads > 0, "num_attention_heads", "must be a positive integer");
  require(num_kv_heads > 0, "num_key_value_heads", "must be a positive integer");
  require(num_heads % num_kv_heads == 0, "num_key_value_heads",
          "(" + std::to_string(num_kv_heads) + ") must divide num_attention_heads (" +
              std::to_string(num_heads) + ")");
  require(head_dim > 0, "head_dim",
          "must be set (hidden_size / num_attention_heads when config.json has none)");
  require(head_dim % 2 == 0, "head_dim", "(" + std::to_string(head_dim) + ") must be even for RoPE");
  require(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, "rms_norm_eps", "must be positive");
  require(std::isfinite(rope_theta) && rope_theta > 0, "rope_theta", "must be positive");
  require(max_position_embeddings > 0, "max_position_embeddings", "must be a positive integer");
  if (rope_scaling != RopeScaling::None) {
    require(std::isfinite(rope_factor) && rope_factor > 0, "rope_scaling.factor", "must be positive");
  }
  if (rope_scaling == RopeScaling::Llama3) {
    require(rope_low_freq_factor > 0, "rope_scaling.low_freq_factor", "must be positive");
    require(rope_high_freq_factor > rope_low_freq_factor, "rope_scaling.high_freq_factor",
            "must be greater than low_freq_factor");
    require(rope_original_max_position > 0, "rope_scaling.original_max_position_embeddings",
            "must be a positive integer");
  }
  // Sizes are multiplied together in 32-bit offsets by some ops (rows * D):
  // keep each matrix below 2^31 elements.
  require(static_cast<int64_t>(vocab_size) * hidden_size < (int64_t(1) << 31), "vocab_size",
          "x hidden_size is too large for this engine");
}

}  // namespace ps
