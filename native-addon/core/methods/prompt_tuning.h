// Prompt tuning (Lester et al. 2021) as Hugging Face PEFT defines it
// (PROMPT_TUNING): nvt learned "virtual token" embeddings are prepended to
// every row's input embeddings. They take positions 0..nvt-1, the real tokens
// follow from nvt, their labels are -100 and the attention mask is extended
// with ones (they belong to the row's sequence). Only the embeddings train;
// the whole model, its embedding table included, stays frozen.
//
// The engine keeps batches as the real tokens only (what the Node side
// sends); prepend_virtual_tokens() builds the batch the model runs, and the
// model swaps the virtual rows' embeddings in after the token lookup.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "methods/prompt_learning_options.h"
#include "methods/trainable.h"
#include "model/dims.h"

namespace ps {

// The PEFT tensor name (adapter_model.safetensors key and engine name).
extern const char* const kPromptEmbeddingsName;  // "prompt_embeddings"

class PromptTuning {
 public:
  // init: [nvt * hidden] (RANDOM / TEXT / SAMPLE_VOCAB are computed by the caller).
  PromptTuning(Backend& be, const ModelDims& d, const PromptTuningOptions& options);
  ~PromptTuning();
  PromptTuning(const PromptTuning&) = delete;
  PromptTuning& operator=(const PromptTuning&) = delete;

  int tokens() const { return nvt_; }
  const float* embeddings() const { return value_; }  // [nvt, hidden]
  float* gradient() const { return grad_; }
  const std::vector<TrainableTensor>& trainables() const { return trainables_; }
  int64_t params() const { return static_cast<int64_t>(nvt_) * hidden_; }

 private:
  Backend& be_;
  int nvt_;
  int hidden_;
  float* value_ = nullptr;
  float* grad_ = nullptr;
  std::vector<TrainableTensor> trainables_;
};

// Checks a prompt-tuning setup and throws an actionable ps::Error.
void validate_prompt_tuning(const ModelDims& d, const PromptTuningOptions& o);

// The batch the model runs: each row becomes [nvt virtual, seq_len real].
// Virtual positions: ids 0 (placeholders, their embeddings are replaced),
// labels -100, positions 0..nvt-1, segment = the row's sequence (-1 for an
// all-padding row); real positions shifted by +nvt. A row that packs two
// sequences is refused: PEFT has no packing, and each sequence would need its
// own copy of the prompt.
Batch prepend_virtual_tokens(const Batch& b, int nvt);

// h[r, i, :] = prompt[i, :] for every row r and i < nvt (h: [B, nvt + T, D]).
void insert_prompt(Backend& be, const float* prompt, int nvt, int B, int row_len, int D, float* h);
// dprompt[i, :] += sum over rows r of dh[r, i, :].
void prompt_backward(Backend& be, const float* dh, int nvt, int B, int row_len, int D, float* dprompt);

}  // namespace ps
