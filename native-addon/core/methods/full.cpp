#include "methods/full.h"

namespace ps {

FullFineTune::FullFineTune(Backend& be, WeightStore& weights) : be_(be) {
  weights.require_complete();
  try {
    for (const auto& t : weights.tensors()) {
      float* value = weights.writable(t.name);
      float* grad = static_cast<float*>(be.alloc(t.numel * sizeof(float)));
      grads_[t.name] = grad;
      be.fill(grad, 0.0f, t.numel);
      // As the HF Trainer: no weight decay on norm weights and biases (the 1-D tensors).
      trainables_.push_back({t.name, t.shape, t.numel, value, grad, t.shape.size() > 1});
    }
  } catch (...) {
    for (auto& kv : grads_) be_.release(kv.second);
    throw;
  }
}

FullFineTune::~FullFineTune() {
  for (auto& kv : grads_) be_.release(kv.second);
}

float* FullFineTune::grad(const std::string& name) const {
  auto it = grads_.find(name);
  return it == grads_.end() ? nullptr : it->second;
}

}  // namespace ps
