// The Llama-family causal LM (Llama, Mistral, Qwen2, Qwen3, SmolLM, ...) as
// Hugging Face transformers computes it: embeddings, L decoder layers
// (attention block + MLP block, see blocks.h), final norm, lm_head, shifted
// cross-entropy. This file runs the passes: training (forward, loss,
// backward, recomputing each layer's attention block from its saved input,
// and with checkpointing its MLP products too), evaluation
// and incremental decoding with a KV cache. It owns no parameters: a
// ModelParams holds pointers bound from the weight store and the method.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "model/activations.h"
#include "model/batch_inputs.h"
#include "model/blocks.h"
#include "model/dims.h"

namespace ps {

class WeightStore;
class LoraAdapters;
class PromptTuning;
class PrefixTuning;

struct ModelParams {
  const float* embed = nullptr;  // [V, D]
  float* dembed = nullptr;       // nullptr: the input embeddings get no gradient
  const uint16_t* embed16 = nullptr;  // or the table in 16 bits (embed == nullptr, frozen)
  bool embed_bf16 = false;
  HeadParams head;
  std::vector<LayerParams> layers;
  // PEFT's prompt-learning methods (at most one; the engine sets them):
  // prompt tuning's virtual rows lead every batch row (prepend_virtual_tokens),
  // prefix tuning adds its prefix to every layer's keys and values.
  const PromptTuning* prompt = nullptr;
  const PrefixTuning* prefix = nullptr;
};

// Binds the weights' current pointers; grad_of(name) gives a trainable
// tensor's gradient or nullptr (frozen). Tied lm_head shares the embedding
// and its gradient.
ModelParams bind_params(const ModelDims& d, const WeightStore& w, const LoraAdapters* lora,
                        const std::function<float*(const std::string&)>& grad_of);

// Per generation: each layer's keys and values for positions [0, length).
struct KvCache {
  int capacity = 0;
  int length = 0;
  int virtual_tokens = 0;  // leading positions a prompt/prefix adapter filled (not counted in maxTokens)
  std::vector<float*> k, v;  // [L] each [capacity, Dkv]
};

class LlamaModel {
 public:
  LlamaModel(Backend& be, const ModelSpec& resolved_spec);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const ModelSpec& spec() const { return spec_; }
  const ModelDims& dims() const { return d_; }

  struct TrainPass {
    float grad_scale = 1.0f;
    bool checkpoint = false;
    bool dropout = false;   // training mode: LoRA dropout masks keyed by step_key
    uint64_t step_key = 0;
    float neftune_magnitude = 0.0f;  // NEFTune: noise within +-this on the input embeddings (0: none)
  };
  // pb = prepare_batch(batch); the arena must come from a training plan for
  // at least pb.rows rows (evaluate: any plan).
  LossResult forward_backward(const ModelParams& p, Activations& a, const Batch& batch,
                              const PreparedBatch& pb, const TrainPass& pass);
  LossResult evaluate(const ModelParams& p, Activations& a, const Batch& batch, const PreparedBatch& pb);
  // Appends tokens to the cache (in chunks of the arena's rows) and returns
  // the logits [V] of the last one, in the arena.
  const float* decode(const ModelParams& p, Activations& a, KvCache& cache, const int32_t* tokens,
                      size_t n);
  // Appends n positions whose input embeddings are given ([n, D], backend
  // memory) instead of looked up: prompt tuning's virtual tokens.
  const float* decode_embeddings(const ModelParams& p, Activations& a, KvCache& cache, const float* embeds,
                                 size_t n);

 private:
  void ensure_rope(int positions);
  PassContext context(Activations& a, int B, int T) const;
  // Points the context at the prefix table; with prefix_projection runs the MLP into the arena first.
  void bind_prefix(const ModelParams& p, Activations& a, PassContext& c, bool train) const;
  const float* decode_rows(const ModelParams& p, Activations& a, KvCache& cache, const int32_t* tokens,
                           const float* embeds, size_t n);

  Backend& be_;
  ModelSpec spec_;
  ModelDims d_;
  float* rope_cos_ = nullptr;  // [rope_len_, head_dim / 2] in backend memory
  float* rope_sin_ = nullptr;
  int rope_len_ = 0;
};

}  // namespace ps
