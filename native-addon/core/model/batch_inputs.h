// A training/evaluation batch checked against the model and turned into what
// the passes need: the shifted, compacted targets and the rows they belong to.
#pragma once

#include <vector>

#include "engine.h"
#include "model/blocks.h"
#include "model/dims.h"

namespace ps {

struct PreparedBatch {
  int B = 0, T = 0, rows = 0;
  RowRuns runs;                  // counted rows, in order
  std::vector<int32_t> targets;  // their labels (labels[t + 1]), one per counted row
  int max_position = 0;
};

// Throws ps::Error naming the field and index of the first bad value.
PreparedBatch prepare_batch(const Batch& batch, const ModelDims& d);

// RoPE positions (and KV-cache lengths) are kept below this: the cos/sin
// tables grow with the largest position (head_dim * 4 bytes per position,
// 512 MiB at this limit for head_dim 128).
constexpr int kMaxPosition = 1 << 20;

// Tokens one step may hold (batch x sequence, virtual tokens included): far
// beyond any workstation's memory, and low enough that every row count and
// offset the passes compute stays inside an int.
constexpr int64_t kMaxTokensPerStep = int64_t(1) << 24;

}  // namespace ps
