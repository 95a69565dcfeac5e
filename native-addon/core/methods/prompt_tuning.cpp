#include "methods/prompt_tuning.h"

#include <cmath>
#include <string>

#include "error.h"

namespace ps {

const char* const kPromptEmbeddingsName = "prompt_embeddings";

void validate_prompt_tuning(const ModelDims& d, const PromptTuningOptions& o) {
  if (o.num_virtual_tokens < 1)
    throw Error("prompt tuning: numVirtualTokens must be at least 1 (got " + std::to_string(o.num_virtual_tokens) +
                "); PEFT's num_virtual_tokens is the length of the soft prompt, typically 8..100");
  if (o.num_virtual_tokens > 4096)
    throw Error("prompt tuning: numVirtualTokens " + std::to_string(o.num_virtual_tokens) +
                " is too large (at most 4096); use fewer virtual tokens");
  const size_t want = static_cast<size_t>(o.num_virtual_tokens) * d.D;
  if (o.init.size() != want)
    throw Error("prompt tuning: the initial embeddings have " + std::to_string(o.init.size()) +
                " values, expected numVirtualTokens x hiddenSize = " + std::to_string(o.num_virtual_tokens) + " x " +
                std::to_string(d.D) + " = " + std::to_string(want));
  for (size_t i = 0; i < o.init.size(); ++i)
    if (!std::isfinite(o.init[i]))
      throw Error("prompt tuning: initial embedding value " + std::to_string(i) +
                  " is not a finite number; check the init text / vocabulary sample");
}

PromptTuning::PromptTuning(Backend& be, const ModelDims& d, const PromptTuningOptions& o)
    : be_(be), nvt_(o.num_virtual_tokens), hidden_(d.D) {
  validate_prompt_tuning(d, o);
  const size_t n = static_cast<size_t>(nvt_) * hidden_;
  value_ = static_cast<float*>(be.alloc(n * sizeof(float)));
  try {
    grad_ = static_cast<float*>(be.alloc(n * sizeof(float)));
  } catch (...) {
    be.release(value_);
    throw;
  }
  be.upload(value_, o.init.data(), n * sizeof(float));
  be.fill(grad_, 0.0f, n);
  trainables_.push_back({kPromptEmbeddingsName, {nvt_, hidden_}, n, value_, grad_, true});
}

PromptTuning::~PromptTuning() {
  be_.release(value_);
  be_.release(grad_);
}

Batch prepend_virtual_tokens(const Batch& b, int nvt) {
  const int T = b.seq_len, X = nvt + T;
  const size_t n = static_cast<size_t>(b.batch_size) * T;
  // Sizes are checked here too: the expanded batch is built before prepare_batch sees the original.
  if (b.input_ids.size() != n || b.labels.size() != n || b.segments.size() != n || b.positions.size() != n)
    throw Error("batch: inputIds, labels, segments and positions must each have batchSize x seqLen = " +
                std::to_string(n) + " entries");
  Batch x;
  x.batch_size = b.batch_size;
  x.seq_len = X;
  const size_t m = static_cast<size_t>(b.batch_size) * X;
  x.input_ids.resize(m);
  x.labels.resize(m);
  x.segments.resize(m);
  x.positions.resize(m);
  for (int r = 0; r < b.batch_size; ++r) {
    const size_t in = static_cast<size_t>(r) * T, out = static_cast<size_t>(r) * X;
    int32_t seg = -1;
    for (int t = 0; t < T; ++t) {
      const int32_t s = b.segments[in + t];
      if (s < 0) continue;
      if (seg >= 0 && s != seg)
        throw Error("prompt tuning: batch row " + std::to_string(r) + " packs several sequences (segments " +
                    std::to_string(seg) + " and " + std::to_string(s) +
                    "); the soft prompt is prepended to each sequence, so turn sequence packing off");
      seg = s;
    }
    for (int i = 0; i < nvt; ++i) {
      x.input_ids[out + i] = 0;
      x.labels[out + i] = -100;
      x.segments[out + i] = seg;
      x.positions[out + i] = i;
    }
    for (int t = 0; t < T; ++t) {
      x.input_ids[out + nvt + t] = b.input_ids[in + t];
      x.labels[out + nvt + t] = b.labels[in + t];
      x.segments[out + nvt + t] = b.segments[in + t];
      x.positions[out + nvt + t] = b.positions[in + t] + nvt;
    }
  }
  return x;
}

void insert_prompt(Backend& be, const float* prompt, int nvt, int B, int row_len, int D, float* h) {
  const size_t block = static_cast<size_t>(nvt) * D;
  for (int r = 0; r < B; ++r) be.copy(h + static_cast<size_t>(r) * row_len * D, prompt, block);
}

void prompt_backward(Backend& be, const float* dh, int nvt, int B, int row_len, int D, float* dprompt) {
  const size_t block = static_cast<size_t>(nvt) * D;
  for (int r = 0; r < B; ++r) be.add(dprompt, dh + static_cast<size_t>(r) * row_len * D, block);
}

}  // namespace ps
