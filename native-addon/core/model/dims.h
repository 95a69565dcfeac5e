// The sizes the model code uses, derived once from a ModelSpec, and the spec
// with its defaults filled in (head_dim = hidden / heads when not given).
#pragma once

#include <cstdint>

#include "model/spec.h"

namespace ps {

// Fills head_dim when 0 and validates; every engine entry point calls this.
ModelSpec resolve_spec(const ModelSpec& spec);

struct ModelDims {
  int V = 0;    // vocabulary
  int D = 0;    // hidden size (residual stream)
  int F = 0;    // MLP intermediate size
  int L = 0;    // layers
  int Hq = 0;   // query heads
  int Hkv = 0;  // key/value heads
  int hd = 0;   // head dim
  int Dq = 0;   // Hq * hd: q_proj output, o_proj input
  int Dkv = 0;  // Hkv * hd: k_proj / v_proj output
  bool tied = false;
  bool qkv_bias = false;
  bool o_bias = false;  // Llama/Qwen3 attention_bias also covers o_proj; Qwen2 has q/k/v only
  bool qk_norm = false;

  explicit ModelDims(const ModelSpec& spec);
  ModelDims() = default;
  int max_linear_in() const;  // widest input of any linear (D, Dq or F)
};

}  // namespace ps
