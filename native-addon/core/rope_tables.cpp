// See rope_tables.h. Each line below mirrors one tensor operation of
// transformers, in the order and precision (fp32 tensors, Python scalars
// rounded to fp32 where they meet a tensor) it performs them.
#include "rope_tables.h"

#include <cmath>
#include <string>

#include "error.h"

namespace ps {

namespace {

int head_dim_of(const ModelSpec& spec) {
  if (spec.head_dim > 0) return spec.head_dim;
  return spec.num_heads > 0 ? spec.hidden_size / spec.num_heads : 0;
}

void require(bool ok, const std::string& field, const std::string& what) {
  if (!ok) throw Error("RoPE tables: model config " + field + " " + what);
}

// transformers' _compute_llama3_parameters, applied to inv_freq in place.
void apply_llama3_scaling(const ModelSpec& spec, std::vector<float>& inv_freq) {
  const float factor = spec.rope_factor;
  const float low_freq_factor = spec.rope_low_freq_factor;
  const float high_freq_factor = spec.rope_high_freq_factor;
  const double old_context_len = spec.rope_original_max_position;
  // Python floats, compared against fp32 tensors (so rounded to fp32).
  const float low_freq_wavelen = static_cast<float>(old_context_len / low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(old_context_len / high_freq_factor);
  const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  for (float& f : inv_freq) {
    // `2 * math.pi / inv_freq` is Tensor.__rtruediv__: reciprocal, then multiply.
    const float wavelen = (1.0f / f) * two_pi;
    float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    const float smooth_factor = ((1.0f / wavelen) * static_cast<float>(old_context_len) - low_freq_factor) /
                                static_cast<float>(static_cast<double>(high_freq_factor) - low_freq_factor);
    const float smoothed = (1.0f - smooth_factor) * scaled / factor + smooth_factor * scaled;
    const bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    f = is_medium ? smoothed : scaled;
  }
}

}  // namespace

std::vector<float> rope_inv_freq(const ModelSpec& spec) {
  const int D = head_dim_of(spec);
  require(D > 0 && D % 2 == 0, "head_dim", "must be even and positive, got " + std::to_string(D));
  require(std::isfinite(spec.rope_theta) && spec.rope_theta > 0, "rope_theta", "must be positive");
  std::vector<float> inv_freq(static_cast<size_t>(D / 2));
  for (int i = 0; i < D / 2; ++i) {
    // torch.arange(0, dim, 2).float() / dim, then base ** that, then 1.0 / that.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(D);
    inv_freq[i] = 1.0f / powf(spec.rope_theta, exponent);
  }
  switch (spec.rope_scaling) {
    case RopeScaling::None:
      break;
    case RopeScaling::Linear:
      require(std::isfinite(spec.rope_factor) && spec.rope_factor > 0, "rope_scaling.factor",
              "must be positive");
      for (float& f : inv_freq) f /= spec.rope_factor;
      break;
    case RopeScaling::Llama3:
      require(std::isfinite(spec.rope_factor) && spec.rope_factor > 0, "rope_scaling.factor",
              "must be positive");
      require(spec.rope_low_freq_factor > 0, "rope_scaling.low_freq_factor", "must be positive");
      require(spec.rope_high_freq_factor > spec.rope_low_freq_factor,
              "rope_scaling.high_freq_factor", "must be greater than low_freq_factor");
      require(spec.rope_original_max_position > 0,
              "rope_scaling.original_max_position_embeddings", "must be positive");
      apply_llama3_scaling(spec, inv_freq);
      break;
  }
  return inv_freq;
}

void build_rope_tables(const ModelSpec& spec, int max_pos, float* cos, float* sin) {
  require(max_pos > 0, "max_position_embeddings", "must be positive (table length " +
                                                      std::to_string(max_pos) + ")");
  const std::vector<float> inv_freq = rope_inv_freq(spec);
  const size_t half = inv_freq.size();
  for (int pos = 0; pos < max_pos; ++pos) {
    for (size_t i = 0; i < half; ++i) {
      // The fp32 angle HF gets from inv_freq @ position_ids; its cos/sin
      // rounded from double (torch's fp32 cos/sin are within an ulp of that).
      const float angle = static_cast<float>(pos) * inv_freq[i];
      cos[static_cast<size_t>(pos) * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin[static_cast<size_t>(pos) * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

}  // namespace ps
