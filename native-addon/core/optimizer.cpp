#include "optimizer.h"

#include <algorithm>
#include <cmath>

#include "error.h"

namespace ps {

// One backend call for every tensor (on a device: one round trip, not one
// per tensor), then the per-tensor sums added in list order on the host: the
// bits of the former loop `sum += be.sum_squares(t.grad, t.numel)`.
double global_grad_norm(Backend& be, const std::vector<TrainableTensor>& params) {
  std::vector<const float*> xs;
  std::vector<size_t> ns;
  xs.reserve(params.size());
  ns.reserve(params.size());
  for (const auto& t : params) {
    xs.push_back(t.grad);
    ns.push_back(t.numel);
  }
  std::vector<double> per_tensor(params.size());
  be.sum_squares_many(xs.data(), ns.data(), static_cast<int>(params.size()), per_tensor.data());
  double sum = 0;
  for (double s : per_tensor) sum += s;
  return std::sqrt(sum);
}

Optimizer::~Optimizer() { release(); }

void Optimizer::release() {
  for (float* p : m_) be_.release(p);
  for (float* p : v_) be_.release(p);
  m_.clear();
  v_.clear();
  bytes_ = 0;
}

void Optimizer::allocate_moments(const std::vector<TrainableTensor>& params) {
  release();
  for (const auto& t : params) {
    m_.push_back(static_cast<float*>(be_.alloc(t.numel * sizeof(float))));
    v_.push_back(static_cast<float*>(be_.alloc(t.numel * sizeof(float))));
    be_.fill(m_.back(), 0.0f, t.numel);
    be_.fill(v_.back(), 0.0f, t.numel);
    bytes_ += 2 * t.numel * sizeof(float);
  }
}

uint64_t Optimizer::bytes() const { return bytes_; }

double Optimizer::step(const std::vector<TrainableTensor>& params, const OptimizerStep& o) {
  if (params.empty()) throw Error("optimizer step: nothing is trainable; call setupLora or setupFull first");
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) throw Error("optimizer: lr must be a finite number >= 0");
  if (o.kind == OptimizerStep::Kind::AdamW &&
      !(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.eps > 0))
    throw Error("optimizer: AdamW needs 0 <= beta1, beta2 < 1 and eps > 0");
  const double norm = global_grad_norm(be_, params);
  if (!std::isfinite(norm))
    throw Error("the gradient norm is " + std::to_string(norm) +
                ": the loss diverged (lower the learning rate, or enable gradient clipping)");
  // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1.
  float scale = 1.0f;
  if (o.max_grad_norm > 0) scale = static_cast<float>(std::min(1.0, o.max_grad_norm / (norm + 1e-6)));

  if (o.kind == OptimizerStep::Kind::AdamW) {
    if (m_.size() != params.size()) allocate_moments(params);
    const int t = static_cast<int>(steps_ + 1);
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      be_.adamw_step(p.value, p.grad, m_[i], v_[i], p.numel, o.lr, o.beta1, o.beta2, o.eps,
                     p.decay ? o.weight_decay : 0.0f, t, scale);
    }
  } else {
    for (const auto& p : params)
      be_.sgd_step(p.value, p.grad, p.numel, o.lr, p.decay ? o.weight_decay : 0.0f, scale);
  }
  ++steps_;
  for (const auto& p : params) be_.fill(p.grad, 0.0f, p.numel);
  return norm;
}

OptimizerState Optimizer::state(const std::vector<TrainableTensor>& params) const {
  OptimizerState s;
  s.step = steps_;
  if (m_.size() != params.size()) return s;
  for (size_t i = 0; i < params.size(); ++i) {
    OptimizerTensorState t;
    t.name = params[i].name;
    t.m.resize(params[i].numel);
    t.v.resize(params[i].numel);
    be_.download(t.m.data(), m_[i], t.m.size() * sizeof(float));
    be_.download(t.v.data(), v_[i], t.v.size() * sizeof(float));
    s.tensors.push_back(std::move(t));
  }
  return s;
}

void Optimizer::set_state(const std::vector<TrainableTensor>& params, const OptimizerState& s) {
  if (s.step < 0) throw Error("optimizer state: step must be >= 0");
  if (!s.tensors.empty()) {
    if (s.tensors.size() != params.size())
      throw Error("optimizer state has " + std::to_string(s.tensors.size()) + " tensors but " +
                  std::to_string(params.size()) +
                  " are trainable: the checkpoint was saved with a different method or adapter config");
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& t = s.tensors[i];
      if (t.name != params[i].name)
        throw Error("optimizer state: tensor " + std::to_string(i) + " is \"" + t.name + "\", expected \"" +
                    params[i].name + "\"");
      if (t.m.size() != params[i].numel || t.v.size() != params[i].numel)
        throw Error("optimizer state: \"" + t.name + "\" has the wrong size (" + std::to_string(t.m.size()) +
                    ", expected " + std::to_string(params[i].numel) + ")");
    }
    allocate_moments(params);
    for (size_t i = 0; i < params.size(); ++i) {
      be_.upload(m_[i], s.tensors[i].m.data(), params[i].numel * sizeof(float));
      be_.upload(v_[i], s.tensors[i].v.data(), params[i].numel * sizeof(float));
    }
  } else {
    release();
  }
  steps_ = s.step;
}

}  // namespace ps
