#include "model/batch_inputs.h"

#include "error.h"

namespace ps {

namespace {
void check_size(const std::vector<int32_t>& v, const char* field, size_t want) {
  if (v.size() != want)
    throw Error(std::string("batch.") + field + " has " + std::to_string(v.size()) +
                " entries, expected batchSize x seqLen = " + std::to_string(want));
}
std::string at(const char* field, size_t i) { return std::string("batch.") + field + "[" + std::to_string(i) + "]"; }
}  // namespace

PreparedBatch prepare_batch(const Batch& b, const ModelDims& d) {
  if (b.batch_size < 1 || b.seq_len < 1)
    throw Error("batch.batchSize and batch.seqLen must be at least 1 (got " + std::to_string(b.batch_size) +
                " x " + std::to_string(b.seq_len) + ")");
  if (static_cast<int64_t>(b.batch_size) * b.seq_len > kMaxTokensPerStep)
    throw Error("batch of " + std::to_string(b.batch_size) + " x " + std::to_string(b.seq_len) +
                " tokens is too large for one step: lower the batch size or the sequence length");
  const size_t n = static_cast<size_t>(b.batch_size) * b.seq_len;
  check_size(b.input_ids, "inputIds", n);
  check_size(b.labels, "labels", n);
  check_size(b.segments, "segments", n);
  check_size(b.positions, "positions", n);
  PreparedBatch p;
  p.B = b.batch_size;
  p.T = b.seq_len;
  p.rows = static_cast<int>(n);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = b.input_ids[i], label = b.labels[i], pos = b.positions[i];
    if (id < 0 || id >= d.V)
      throw Error(at("inputIds", i) + " = " + std::to_string(id) + " is not a token id of this model (0.." +
                  std::to_string(d.V - 1) + "): was the data tokenized with this model's tokenizer?");
    if (label != -100 && (label < 0 || label >= d.V))
      throw Error(at("labels", i) + " = " + std::to_string(label) + " must be -100 or a token id (0.." +
                  std::to_string(d.V - 1) + ")");
    if (pos < 0 || pos >= kMaxPosition)
      throw Error(at("positions", i) + " = " + std::to_string(pos) + " must be in [0, " +
                  std::to_string(kMaxPosition) + ")");
    if (pos > p.max_position) p.max_position = pos;
  }
  // Position t predicts labels[t + 1] of the same row and the same segment.
  for (int r = 0; r < p.B; ++r) {
    const size_t base = static_cast<size_t>(r) * p.T;
    for (int t = 0; t + 1 < p.T; ++t) {
      const size_t i = base + t;
      const int32_t label = b.labels[i + 1];
      const bool counted = label != -100 && b.segments[i] >= 0 && b.segments[i + 1] == b.segments[i];
      if (!counted) continue;
      const int row = static_cast<int>(i);
      if (!p.runs.empty() && p.runs.back().first + p.runs.back().second == row)
        ++p.runs.back().second;
      else
        p.runs.emplace_back(row, 1);
      p.targets.push_back(label);
    }
  }
  return p;
}

}  // namespace ps
