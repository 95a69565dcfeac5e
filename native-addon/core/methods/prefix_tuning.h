// Prefix tuning (Li & Liang 2021) as Hugging Face PEFT defines it
// (PREFIX_TUNING): every layer's attention gets nvt extra key/value positions
// in front of the real ones, as if a KV cache of nvt tokens were there. The
// keys are used as stored (no rotary embedding), every real token sees all of
// them (with packing, every sequence does), and the real tokens' positions
// start at nvt. Only the prefix trains; the model stays frozen.
//
// The prefix is PEFT's table [nvt, num_layers * 2 * token_dim] (token_dim =
// kv heads x head_dim), read as [nvt, 2 * num_layers, kv_heads, head_dim]:
// layer l takes its keys from slice 2l and its values from slice 2l + 1.
// Without projection the table is the trainable tensor itself
// ("prefix_embeddings"); with PEFT's prefix_projection it is the output of a
// small MLP over a [nvt, token_dim] embedding, computed each pass while
// training and folded into the plain table on export (table()).
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "methods/prompt_learning_options.h"
#include "methods/trainable.h"
#include "model/dims.h"

namespace ps {

extern const char* const kPrefixTableName;  // "prefix_embeddings": the plain table (no projection)

// Trainable parameters of a prefix-tuning setup (enc = 0: no projection).
int64_t prefix_tuning_params(const ModelDims& d, int nvt, int encoder_hidden_size);
// Checks a prefix-tuning setup and throws an actionable ps::Error.
void validate_prefix_tuning(const ModelDims& d, const PrefixTuningOptions& o);

class PrefixTuning {
 public:
  PrefixTuning(Backend& be, const ModelDims& d, const PrefixTuningOptions& options);  // allocates and initialises
  ~PrefixTuning();
  PrefixTuning(const PrefixTuning&) = delete;
  PrefixTuning& operator=(const PrefixTuning&) = delete;

  int tokens() const { return nvt_; }
  int token_dim() const { return token_dim_; }  // kv heads x head_dim
  int width() const { return width_; }          // num_layers * 2 * token_dim: one table row
  bool projection() const { return enc_ > 0; }
  int encoder_hidden() const { return enc_; }
  const std::vector<TrainableTensor>& trainables() const { return trainables_; }
  int64_t params() const;

  // Without projection: the table [nvt, width] and its gradient.
  const float* table() const { return t_[0].value; }
  float* table_gradient() const { return t_[0].grad; }

  // With projection: table = W2 tanh(W1 e + b1) + b2 for each embedding row e.
  // hidden [nvt, enc] receives the tanh output (kept for backward).
  void project(float* hidden, float* table) const;
  // Accumulates the gradients of the MLP and the embedding from dtable
  // [nvt, width]; dhidden [nvt, enc] is scratch (overwritten).
  void project_backward(const float* hidden, const float* dtable, float* dhidden) const;

  // The table as PEFT saves it (projection applied) on the host.
  std::vector<float> host_table() const;

 private:
  Backend& be_;
  int nvt_, token_dim_, width_, enc_;
  std::vector<TrainableTensor> t_;  // embedding (the table without projection), then W1, b1, W2, b2
  std::vector<TrainableTensor> trainables_;
};

// The keys (or values) one attention call reads: out[b] = [prefix rows; x[b]]
// for each batch row b, out [B, P + T, width_x]. prefix: P rows of width_x
// floats, `stride` floats apart (one layer's slice of the table).
void prefix_concat(Backend& be, const float* prefix, size_t stride, int P, const float* x, int B, int T, int width_x,
                   float* out);
// Splits the gradient of such a concatenation: dx (overwritten) gets the real
// rows, dprefix (row stride `stride`; nullptr: frozen) accumulates the prefix rows of every batch row.
void prefix_split_grad(Backend& be, const float* dcat, int P, int B, int T, int width_x, float* dx, float* dprefix,
                       size_t stride);

}  // namespace ps
