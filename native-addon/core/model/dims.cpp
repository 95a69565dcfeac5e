#include "model/dims.h"

#include <algorithm>

namespace ps {

ModelSpec resolve_spec(const ModelSpec& spec) {
  ModelSpec s = spec;
  if (s.head_dim == 0 && s.num_heads > 0 && s.hidden_size % s.num_heads == 0)
    s.head_dim = s.hidden_size / s.num_heads;
  s.validate();
  return s;
}

ModelDims::ModelDims(const ModelSpec& s)
    : V(s.vocab_size),
      D(s.hidden_size),
      F(s.intermediate_size),
      L(s.num_layers),
      Hq(s.num_heads),
      Hkv(s.num_kv_heads),
      hd(s.head_dim),
      Dq(s.num_heads * s.head_dim),
      Dkv(s.num_kv_heads * s.head_dim),
      tied(s.tie_word_embeddings),
      qkv_bias(s.attention_bias),
      o_bias(s.attention_bias && s.architecture != "Qwen2ForCausalLM"),
      qk_norm(s.qk_norm) {}

int ModelDims::max_linear_in() const { return std::max({D, Dq, F}); }

}  // namespace ps
