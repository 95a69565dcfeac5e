#include "methods/prefix_tuning.h"

#include <cmath>
#include <string>

#include "error.h"
#include "rng.h"

namespace ps {

const char* const kPrefixTableName = "prefix_embeddings";

int64_t prefix_tuning_params(const ModelDims& d, int nvt, int enc) {
  const int64_t token_dim = d.Dkv, width = 2 * static_cast<int64_t>(d.L) * token_dim;
  if (enc <= 0) return nvt * width;
  return nvt * token_dim + enc * token_dim + enc + width * enc + width;
}

void validate_prefix_tuning(const ModelDims& d, const PrefixTuningOptions& o) {
  (void)d;
  if (o.num_virtual_tokens < 1)
    throw Error("prefix tuning: numVirtualTokens must be at least 1 (got " + std::to_string(o.num_virtual_tokens) +
                "); PEFT's num_virtual_tokens is the prefix length, typically 10..100");
  if (o.num_virtual_tokens > 4096)
    throw Error("prefix tuning: numVirtualTokens " + std::to_string(o.num_virtual_tokens) +
                " is too large (at most 4096); use fewer virtual tokens");
  if (o.projection && (o.encoder_hidden_size < 1 || o.encoder_hidden_size > 65536))
    throw Error("prefix tuning: projection.encoderHiddenSize must be in [1, 65536] (got " +
                std::to_string(o.encoder_hidden_size) + "); PEFT's default is token_dim (kv heads x head dim)");
}

PrefixTuning::PrefixTuning(Backend& be, const ModelDims& d, const PrefixTuningOptions& o)
    : be_(be),
      nvt_(o.num_virtual_tokens),
      token_dim_(d.Dkv),
      width_(2 * d.L * d.Dkv),
      enc_(o.projection ? o.encoder_hidden_size : 0) {
  validate_prefix_tuning(d, o);
  struct Spec {
    std::string name;
    std::vector<int64_t> shape;
    bool decay;
    double bound;  // 0: N(0, 1) (nn.Embedding), else U(-bound, bound) (nn.Linear's default)
  };
  std::vector<Spec> specs;
  if (!projection()) {
    specs.push_back({kPrefixTableName, {nvt_, width_}, true, 0.0});
  } else {
    const double b1 = 1.0 / std::sqrt(static_cast<double>(token_dim_)), b2 = 1.0 / std::sqrt(static_cast<double>(enc_));
    specs.push_back({"prefix_encoder.embedding.weight", {nvt_, token_dim_}, true, 0.0});
    specs.push_back({"prefix_encoder.transform.0.weight", {enc_, token_dim_}, true, b1});
    specs.push_back({"prefix_encoder.transform.0.bias", {enc_}, false, b1});
    specs.push_back({"prefix_encoder.transform.2.weight", {width_, enc_}, true, b2});
    specs.push_back({"prefix_encoder.transform.2.bias", {width_}, false, b2});
  }
  try {
    for (size_t k = 0; k < specs.size(); ++k) {
      const Spec& s = specs[k];
      size_t n = 1;
      for (int64_t x : s.shape) n *= static_cast<size_t>(x);
      TrainableTensor t{s.name, s.shape, n, nullptr, nullptr, s.decay};
      t.value = static_cast<float*>(be.alloc(n * sizeof(float)));
      t_.push_back(t);
      t_.back().grad = static_cast<float*>(be.alloc(n * sizeof(float)));
      // Each tensor's init depends only on (seed, its index).
      Rng rng(mix_key({o.seed, static_cast<uint64_t>(k)}));
      std::vector<float> host(n);
      for (auto& x : host)
        x = static_cast<float>(s.bound == 0.0 ? rng.normal() : rng.uniform(-s.bound, s.bound));
      be.upload(t_.back().value, host.data(), n * sizeof(float));
      be.fill(t_.back().grad, 0.0f, n);
    }
  } catch (...) {
    for (auto& t : t_) {
      if (t.value) be_.release(t.value);
      if (t.grad) be_.release(t.grad);
    }
    throw;
  }
  trainables_ = t_;
}

PrefixTuning::~PrefixTuning() {
  for (auto& t : t_) {
    be_.release(t.value);
    be_.release(t.grad);
  }
}

int64_t PrefixTuning::params() const {
  int64_t n = 0;
  for (const auto& t : t_) n += static_cast<int64_t>(t.numel);
  return n;
}

void PrefixTuning::project(float* hidden, float* table) const {
  const float *E = t_[0].value, *W1 = t_[1].value, *b1 = t_[2].value, *W2 = t_[3].value, *b2 = t_[4].value;
  be_.gemm_nt(nvt_, enc_, token_dim_, 1.0f, E, token_dim_, W1, token_dim_, 0.0f, hidden, enc_);
  be_.add_bias(hidden, b1, nvt_, enc_);
  be_.tanh_forward(hidden, static_cast<size_t>(nvt_) * enc_);
  be_.gemm_nt(nvt_, width_, enc_, 1.0f, hidden, enc_, W2, enc_, 0.0f, table, width_);
  be_.add_bias(table, b2, nvt_, width_);
}

void PrefixTuning::project_backward(const float* hidden, const float* dtable, float* dhidden) const {
  const TrainableTensor &E = t_[0], &W1 = t_[1], &b1 = t_[2], &W2 = t_[3], &b2 = t_[4];
  be_.bias_backward(dtable, nvt_, width_, b2.grad);
  be_.gemm_tn(width_, enc_, nvt_, 1.0f, dtable, width_, hidden, enc_, 1.0f, W2.grad, enc_);
  be_.gemm_nn(nvt_, enc_, width_, 1.0f, dtable, width_, W2.value, enc_, 0.0f, dhidden, enc_);
  be_.tanh_backward(hidden, dhidden, static_cast<size_t>(nvt_) * enc_);  // dhidden *= 1 - hidden^2
  be_.bias_backward(dhidden, nvt_, enc_, b1.grad);
  be_.gemm_tn(enc_, token_dim_, nvt_, 1.0f, dhidden, enc_, E.value, token_dim_, 1.0f, W1.grad, token_dim_);
  be_.gemm_nn(nvt_, token_dim_, enc_, 1.0f, dhidden, enc_, W1.value, token_dim_, 1.0f, E.grad, token_dim_);
}

std::vector<float> PrefixTuning::host_table() const {
  const size_t n = static_cast<size_t>(nvt_) * width_;
  std::vector<float> out(n);
  if (!projection()) {
    be_.download(out.data(), table(), n * sizeof(float));
    return out;
  }
  float* hidden = static_cast<float*>(be_.alloc(static_cast<size_t>(nvt_) * enc_ * sizeof(float)));
  float* table = nullptr;
  try {
    table = static_cast<float*>(be_.alloc(n * sizeof(float)));
    project(hidden, table);
    be_.download(out.data(), table, n * sizeof(float));
  } catch (...) {
    be_.release(hidden);
    if (table) be_.release(table);
    throw;
  }
  be_.release(hidden);
  be_.release(table);
  return out;
}

void prefix_concat(Backend& be, const float* prefix, size_t stride, int P, const float* x, int B, int T, int w,
                   float* out) {
  const size_t row = static_cast<size_t>(P + T) * w;
  for (int b = 0; b < B; ++b) {
    float* o = out + b * row;
    for (int i = 0; i < P; ++i) be.copy(o + static_cast<size_t>(i) * w, prefix + i * stride, w);
    be.copy(o + static_cast<size_t>(P) * w, x + static_cast<size_t>(b) * T * w, static_cast<size_t>(T) * w);
  }
}

void prefix_split_grad(Backend& be, const float* dcat, int P, int B, int T, int w, float* dx, float* dprefix,
                       size_t stride) {
  const size_t row = static_cast<size_t>(P + T) * w;
  for (int b = 0; b < B; ++b) {
    const float* g = dcat + b * row;
    if (dprefix)
      for (int i = 0; i < P; ++i) be.add(dprefix + i * stride, g + static_cast<size_t>(i) * w, w);
    be.copy(dx + static_cast<size_t>(b) * T * w, g + static_cast<size_t>(P) * w, static_cast<size_t>(T) * w);
  }
}

}  // namespace ps
