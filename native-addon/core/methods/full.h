// Full fine-tuning, the baseline LoRA is compared against: every base weight
// (embeddings, norms, projections, biases, lm_head) becomes a trainable fp32
// master copy with its own gradient. Mapped weights are copied out of the
// read-only file mapping first.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backend.h"
#include "methods/trainable.h"
#include "model/weights.h"

namespace ps {

class FullFineTune {
 public:
  FullFineTune(Backend& be, WeightStore& weights);
  ~FullFineTune();
  FullFineTune(const FullFineTune&) = delete;
  FullFineTune& operator=(const FullFineTune&) = delete;

  const std::vector<TrainableTensor>& trainables() const { return trainables_; }
  float* grad(const std::string& name) const;  // nullptr for unknown names

 private:
  Backend& be_;
  std::vector<TrainableTensor> trainables_;
  std::map<std::string, float*> grads_;
};

}  // namespace ps
