// RoPE cos/sin tables exactly as Hugging Face transformers builds them
// (modeling_rope_utils.py + LlamaRotaryEmbedding), step by step in fp32:
//   inv_freq[i] = 1 / theta^((2i) / D)                      default
//   inv_freq /= factor                                     "linear"
//   _compute_llama3_parameters (wavelength bands, smoothing) "llama3"
//   angle = float(pos) * inv_freq[i];  cos/sin of that angle
// The tables are [max_pos, D/2]: HF's [.., D] tables repeat these twice.
#pragma once

#include <vector>

#include "model/spec.h"

namespace ps {

// The D/2 inverse frequencies (after scaling). Throws ps::Error naming the
// config field when the spec cannot define them.
std::vector<float> rope_inv_freq(const ModelSpec& spec);

// cos, sin: caller-allocated, max_pos * D/2 floats each (D = spec.head_dim).
void build_rope_tables(const ModelSpec& spec, int max_pos, float* cos, float* sin);

}  // namespace ps
