// The shape of SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json): a real
// small Llama whose published parameter count the tests check against, and
// the model bench_train times (it includes this header by relative path).
#pragma once

#include "model/spec.h"

namespace pstest {

inline ps::ModelSpec smollm2_135m() {
  ps::ModelSpec s;
  s.vocab_size = 49152;
  s.hidden_size = 576;
  s.intermediate_size = 1536;
  s.num_layers = 30;
  s.num_heads = 9;
  s.num_kv_heads = 3;
  s.head_dim = 64;
  s.rms_norm_eps = 1e-5f;
  s.rope_theta = 100000.0f;
  s.max_position_embeddings = 8192;
  s.tie_word_embeddings = true;
  return s;
}

}  // namespace pstest
