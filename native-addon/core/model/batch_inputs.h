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

// RoPE positions above this are refused (the tables would not fit in memory).
constexpr int kMaxPosition = 1 << 22;

}  // namespace ps
