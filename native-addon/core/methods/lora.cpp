#include "methods/lora.h"

#include <algorithm>
#include <cmath>

#include "error.h"
#include "methods/dora.h"
#include "rng.h"

namespace ps {

int module_in_features(const ModelDims& d, int m) {
  return m == kO ? d.Dq : m == kDown ? d.F : d.D;
}

int module_out_features(const ModelDims& d, int m) {
  switch (m) {
    case kQ: return d.Dq;
    case kK:
    case kV: return d.Dkv;
    case kGate:
    case kUp: return d.F;
    default: return d.D;  // o_proj, down_proj
  }
}

LoraSelection::LoraSelection(const ModelDims& d, const std::vector<std::string>& targets,
                             const std::optional<std::vector<int>>& layers)
    : layer(d.L, !layers.has_value()) {
  if (targets.empty())
    throw Error("LoRA target_modules is empty: name at least one of q_proj, k_proj, v_proj, o_proj, "
                "gate_proj, up_proj, down_proj");
  for (const auto& t : targets) {
    int m = module_from_name(t);
    if (m < 0)
      throw Error("LoRA target_modules: unknown module \"" + t +
                  "\" (this engine adapts q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    module[m] = true;
  }
  if (layers) {
    for (int l : *layers) {
      if (l < 0 || l >= d.L)
        throw Error("LoRA layers_to_transform: layer " + std::to_string(l) + " does not exist (the model has " +
                    std::to_string(d.L) + " layers, 0.." + std::to_string(d.L - 1) + ")");
      layer[l] = true;
    }
  }
}

int64_t LoraSelection::params(const ModelDims& d, int rank) const {
  int64_t n = 0;
  for (int l = 0; l < d.L; ++l)
    for (int m = 0; m < kNumModules; ++m)
      if (adapted(l, m))
        n += static_cast<int64_t>(rank) * (module_in_features(d, m) + module_out_features(d, m));
  return n;
}

int64_t LoraSelection::dora_params(const ModelDims& d) const {
  int64_t n = 0;
  for (int l = 0; l < d.L; ++l)
    for (int m = 0; m < kNumModules; ++m)
      if (adapted(l, m)) n += module_out_features(d, m);
  return n;
}

int64_t LoraSelection::dora_aux_floats(const ModelDims& d, int rank) const {
  int widest = 0;
  for (int l = 0; l < d.L; ++l)
    for (int m = 0; m < kNumModules; ++m)
      if (adapted(l, m)) widest = std::max(widest, module_out_features(d, m));
  return 3 * dora_params(d) + static_cast<int64_t>(dora_refresh_scratch_floats(rank, widest));
}

namespace {
void validate(const LoraOptions& o) {
  if (o.rank < 1) throw Error("LoRA rank (r) must be at least 1, got " + std::to_string(o.rank));
  if (!std::isfinite(o.alpha)) throw Error("LoRA alpha must be a finite number");
  if (!(o.dropout >= 0.0f && o.dropout < 1.0f))
    throw Error("LoRA dropout must be in [0, 1), got " + std::to_string(o.dropout));
}
}  // namespace

LoraAdapters::LoraAdapters(Backend& be, const ModelDims& d, const LoraOptions& o)
    : be_(be), d_(d), selection_((validate(o), d), o.targets, o.layers), rank_(o.rank), dropout_(o.dropout),
      dora_(o.dora) {
  const float scale =
      o.rslora ? o.alpha / std::sqrt(static_cast<float>(o.rank)) : o.alpha / static_cast<float>(o.rank);
  adapters_.resize(static_cast<size_t>(d.L) * kNumModules);
  if (dora_) {
    w_sq_.assign(adapters_.size(), nullptr);
    inv_norm_.assign(adapters_.size(), nullptr);
    factor_.assign(adapters_.size(), nullptr);
  }
  for (int l = 0; l < d.L; ++l) any_layer_ = any_layer_ || selection_.layer[l];
  if (!any_layer_) throw Error("LoRA layers_to_transform is empty: select at least one layer to adapt");
  try {
    for (int l = 0; l < d.L; ++l) {
      for (int m = 0; m < kNumModules; ++m) {
        if (!selection_.adapted(l, m)) continue;
        const int in = module_in_features(d, m), out = module_out_features(d, m), r = o.rank;
        LoraAdapter& a = adapters_[static_cast<size_t>(l) * kNumModules + m];
        a.rank = r;
        a.scale = scale;
        a.dropout = o.dropout;
        const size_t na = static_cast<size_t>(r) * in, nb = static_cast<size_t>(out) * r;
        a.A = static_cast<float*>(be.alloc(na * sizeof(float)));
        a.B = static_cast<float*>(be.alloc(nb * sizeof(float)));
        a.dA = static_cast<float*>(be.alloc(na * sizeof(float)));
        a.dB = static_cast<float*>(be.alloc(nb * sizeof(float)));
        // A's init depends only on (seed, layer, module), not on what else is adapted.
        std::vector<float> host(na);
        Rng rng(mix_key({o.seed, static_cast<uint64_t>(l), static_cast<uint64_t>(m)}));
        if (o.init == LoraInit::Default) {
          // PEFT: kaiming_uniform_(A, a=sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)).
          const double bound = 1.0 / std::sqrt(static_cast<double>(in));
          for (auto& x : host) x = static_cast<float>(rng.uniform(-bound, bound));
        } else {
          // PEFT "gaussian": normal_(A, std=1/r).
          const double sd = 1.0 / r;
          for (auto& x : host) x = static_cast<float>(rng.normal() * sd);
        }
        be.upload(a.A, host.data(), na * sizeof(float));
        be.fill(a.B, 0.0f, nb);
        be.fill(a.dA, 0.0f, na);
        be.fill(a.dB, 0.0f, nb);
        const std::string base = module_path(l, m);
        trainables_.push_back({base + ".lora_A.weight", {r, in}, na, a.A, a.dA, true});
        trainables_.push_back({base + ".lora_B.weight", {out, r}, nb, a.B, a.dB, true});
        if (dora_) {
          const size_t i = static_cast<size_t>(l) * kNumModules + m, no = static_cast<size_t>(out);
          a.m = static_cast<float*>(be.alloc(no * sizeof(float)));
          a.dm = static_cast<float*>(be.alloc(no * sizeof(float)));
          w_sq_[i] = static_cast<float*>(be.alloc(no * sizeof(float)));
          inv_norm_[i] = static_cast<float*>(be.alloc(no * sizeof(float)));
          factor_[i] = static_cast<float*>(be.alloc(no * sizeof(float)));
          a.inv_norm = inv_norm_[i];
          a.factor = factor_[i];
          be.fill(a.m, 0.0f, no);  // init_magnitudes sets it from the weights
          be.fill(a.dm, 0.0f, no);
          // Weight decay applies: HF Trainer exempts only bias and norm parameters by name.
          trainables_.push_back({base + ".lora_magnitude_vector", {out}, no, a.m, a.dm, true});
        }
      }
    }
    if (dora_) {
      int widest = 0;
      for (int m = 0; m < kNumModules; ++m)
        if (module_rank(m)) widest = std::max(widest, module_out_features(d, m));
      refresh_scratch_ =
          static_cast<float*>(be.alloc(dora_refresh_scratch_floats(o.rank, widest) * sizeof(float)));
    }
  } catch (...) {
    release_all();
    throw;
  }
}

void LoraAdapters::release_all() {
  for (auto& a : adapters_)
    for (float* p : {a.A, a.B, a.dA, a.dB, a.m, a.dm})
      if (p) be_.release(p);
  for (auto* list : {&w_sq_, &inv_norm_, &factor_})
    for (float* p : *list)
      if (p) be_.release(p);
  if (refresh_scratch_) be_.release(refresh_scratch_);
  refresh_scratch_ = nullptr;
}

LoraAdapters::~LoraAdapters() { release_all(); }

void LoraAdapters::compute_w_sq(const LinearOf& linear_of, bool set_magnitudes) {
  for (int l = 0; l < d_.L; ++l)
    for (int m = 0; m < kNumModules; ++m) {
      if (!selection_.adapted(l, m)) continue;
      const size_t i = static_cast<size_t>(l) * kNumModules + m;
      const std::vector<double> sq = weight_row_squares(be_, linear_of(l, m));
      std::vector<float> host(sq.size());
      for (size_t j = 0; j < sq.size(); ++j) host[j] = static_cast<float>(sq[j]);
      be_.upload(w_sq_[i], host.data(), host.size() * sizeof(float));
      if (set_magnitudes) {
        for (size_t j = 0; j < sq.size(); ++j) host[j] = static_cast<float>(std::sqrt(sq[j]));
        be_.upload(adapters_[i].m, host.data(), host.size() * sizeof(float));
      }
    }
  w_sq_ready_ = true;
  norms_fresh_ = false;
}

void LoraAdapters::init_magnitudes(const LinearOf& linear_of, uint64_t generation) {
  if (!dora_) return;
  compute_w_sq(linear_of, true);
  w_sq_generation_ = generation;
}

void LoraAdapters::prepare_dora(const LinearOf& linear_of, uint64_t generation) {
  if (!dora_) return;
  if (!w_sq_ready_ || generation != w_sq_generation_) {
    compute_w_sq(linear_of, false);
    w_sq_generation_ = generation;
  }
  if (norms_fresh_) return;
  for (int l = 0; l < d_.L; ++l)
    for (int m = 0; m < kNumModules; ++m) {
      if (!selection_.adapted(l, m)) continue;
      const size_t i = static_cast<size_t>(l) * kNumModules + m;
      dora_refresh(be_, linear_of(l, m), adapters_[i], w_sq_[i], inv_norm_[i], factor_[i], refresh_scratch_);
    }
  norms_fresh_ = true;
}

const LoraAdapter* LoraAdapters::get(int layer, int module) const {
  const LoraAdapter& a = adapters_[static_cast<size_t>(layer) * kNumModules + module];
  return a.rank ? &a : nullptr;
}

int64_t LoraAdapters::params() const {
  return selection_.params(d_, rank_) + (dora_ ? selection_.dora_params(d_) : 0);
}

void lora_branch_forward(Backend& be, const LoraAdapter& a, int rows, int in, int out,
                         const float* x, float* y, const LinearScratch& s) {
  const float* xin = x;
  if (s.dropout_active) {
    be.dropout_forward(x, s.dropped, static_cast<size_t>(rows) * in, a.dropout, s.dropout_key);
    xin = s.dropped;
  }
  be.lora_forward(rows, out, in, a.rank, a.scale, xin, a.A, a.B, s.lora_h, y);
}

void lora_branch_backward(Backend& be, const LoraAdapter& a, int rows, int in, int out,
                          const float* x, const float* dy, float* dx, const LinearScratch& s) {
  if (!s.dropout_active) {
    be.lora_backward(rows, out, in, a.rank, a.scale, x, a.A, a.B, s.lora_h, dy, s.lora_dh, a.dA, a.dB,
                     dx);
    return;
  }
  // The mask is recomputed from its key rather than stored.
  const size_t n = static_cast<size_t>(rows) * in;
  be.dropout_forward(x, s.dropped, n, a.dropout, s.dropout_key);
  if (dx) be.fill(s.d_dropped, 0.0f, n);
  be.lora_backward(rows, out, in, a.rank, a.scale, s.dropped, a.A, a.B, s.lora_h, dy, s.lora_dh, a.dA,
                   a.dB, dx ? s.d_dropped : nullptr);
  if (dx) be.dropout_backward(s.d_dropped, dx, n, a.dropout, s.dropout_key);
}

}  // namespace ps
