// Counting the NaN / Inf of a model's tensors (model/non_finite.h) with a
// bounded amount of extra host memory, whatever the model's size. Host fp32
// and 16-bit weights are counted in place. A 4-bit (NF4) weight is counted
// on its dequantized values (a NaN or Inf absmax spreads to its block, as
// the model computes with it), and device memory is fetched by byte range:
// both walk the tensor through one scratch buffer of at most `chunk_values`
// fp32 values (16 MiB by default), reused from tensor to tensor. The counts
// are the same as dequantizing or downloading the whole tensor at once (the
// scan reads every value exactly once, each value's bits as
// WeightStore::read gives them); only the peak memory differs. Whole, an 8B
// model's embedding on a GPU was fetched (1 GB of bf16) and widened into a
// 2.1 GB fp32 copy on the host, each 4-bit down_proj dequantized into 235 MB,
// at the moment a run has gone wrong and memory may be short
// (bench/bench_non_finite.cpp measures a 128256 x 4096 4-bit weight).
#pragma once

#include <cstddef>
#include <vector>

#include "backend.h"
#include "model/non_finite.h"
#include "model/weights.h"

namespace ps {

constexpr size_t kNonFiniteChunkValues = size_t(1) << 22;  // 16 MiB of fp32

class NonFiniteScan {
 public:
  // chunk_values >= 1: the most fp32 values fetched or dequantized at once.
  explicit NonFiniteScan(Backend& backend, size_t chunk_values = kNonFiniteChunkValues);

  // A loaded weight of `store` (which lives on this scan's backend).
  NonFiniteCount weight(const WeightStore& store, const WeightTensor& w);
  // n fp32 values in backend memory (a trainable tensor): in place on a
  // host-memory backend, else downloaded chunk by chunk.
  NonFiniteCount backend_floats(const float* x, size_t n);

  // The scratch buffer's size in values so far: its peak, as it only grows
  // (to at most chunk_values). Tests and the benchmark read it.
  size_t scratch_values() const { return scratch_.size(); }
  // How many chunks were fetched or dequantized so far (0 when everything was
  // counted in place).
  size_t chunks() const { return chunks_; }

 private:
  float* scratch(size_t n);  // grows the buffer to n (<= chunk_) values
  Backend& backend_;
  size_t chunk_;
  std::vector<float> scratch_;
  size_t chunks_ = 0;
};

}  // namespace ps
