// A tensor the optimizer updates: its value and its gradient, both owned by
// the method that created it (LoRA adapters, or full fine-tuning's writable
// copies of the base weights). The list's order is fixed, so the global
// gradient norm is summed in the same order every step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ps {

struct TrainableTensor {
  std::string name;
  std::vector<int64_t> shape;
  size_t numel = 0;
  float* value = nullptr;
  float* grad = nullptr;
  bool decay = true;  // weight decay applies (false for 1-D tensors: norms, biases)
};

}  // namespace ps
