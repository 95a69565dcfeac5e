// Options of PEFT's two "prompt learning" methods the engine trains (engine.h
// re-exports them): prompt tuning and prefix tuning.
#pragma once

#include <cstdint>
#include <vector>

namespace ps {

struct PromptTuningOptions {
  int num_virtual_tokens = 0;
  // [num_virtual_tokens * hidden_size] initial virtual-token embeddings
  // (PEFT's RANDOM / TEXT / SAMPLE_VOCAB init, computed by the caller).
  std::vector<float> init;
};

struct PrefixTuningOptions {
  int num_virtual_tokens = 0;
  // PEFT prefix_projection: an MLP Linear(token_dim -> encoder_hidden_size)
  // -> tanh -> Linear(-> num_layers * 2 * token_dim), used while training
  // only; token_dim = num_kv_heads * head_dim (PEFT's value for grouped-query
  // attention, = hidden_size without it).
  bool projection = false;
  int encoder_hidden_size = 0;
  // Seeds the init: the embedding N(0, 1) as nn.Embedding; the Linear layers
  // as torch's default (kaiming-uniform a = sqrt(5): U(+-1/sqrt(fan_in)), the
  // bias U(+-1/sqrt(fan_in))).
  uint64_t seed = 0;
};

}  // namespace ps
