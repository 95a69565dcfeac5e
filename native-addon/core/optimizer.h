// The optimizer step over a method's trainable tensors, with torch
// semantics: global-norm gradient clipping as clip_grad_norm_, then AdamW
// (torch.optim.AdamW) or plain SGD. AdamW's m and v are allocated at its
// first step; the step count drives the bias correction.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "methods/trainable.h"

namespace ps {

class Optimizer {
 public:
  explicit Optimizer(Backend& be) : be_(be) {}
  ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Returns the global L2 norm of the gradients before clipping; zeroes them after.
  double step(const std::vector<TrainableTensor>& params, const OptimizerStep& options);
  OptimizerState state(const std::vector<TrainableTensor>& params) const;
  void set_state(const std::vector<TrainableTensor>& params, const OptimizerState& state);
  int64_t steps() const { return steps_; }
  uint64_t bytes() const;  // m and v

 private:
  void allocate_moments(const std::vector<TrainableTensor>& params);
  void release();
  Backend& be_;
  int64_t steps_ = 0;
  std::vector<float*> m_, v_;  // per trainable, empty until the first AdamW step
  uint64_t bytes_ = 0;
};

// Global L2 norm of all gradients: per-tensor sums of squares in double, added in list order.
double global_grad_norm(Backend& be, const std::vector<TrainableTensor>& params);

}  // namespace ps
