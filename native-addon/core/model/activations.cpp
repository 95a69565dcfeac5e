#include "model/activations.h"

#include <algorithm>

namespace ps {

int loss_chunk_rows(int rows, int vocab) {
  int c = static_cast<int>((size_t(8) << 20) / static_cast<size_t>(vocab)) / 16 * 16;
  c = std::max(16, std::min(256, c));
  return std::max(1, std::min(rows, c));
}

namespace {

// Walks the layout once: with base == nullptr it only counts bytes.
class Cursor {
 public:
  explicit Cursor(char* base) : base_(base) {}
  template <typename T>
  T* take(size_t count) {
    if (count == 0) return nullptr;
    T* p = base_ ? reinterpret_cast<T*>(base_ + offset_) : nullptr;
    offset_ += (count * sizeof(T) + 63) / 64 * 64;  // every buffer starts on a cache line
    return p;
  }
  size_t offset() const { return offset_; }

 private:
  char* base_;
  size_t offset_ = 0;
};

void layout(const PlanConfig& c, char* base, Activations* out, size_t* bytes) {
  const ModelDims& d = c.dims;
  const size_t R = static_cast<size_t>(c.rows);
  Activations a;
  Cursor cur(base);
  a.rows = c.rows;
  a.loss_chunk = loss_chunk_rows(c.rows, d.V);
  const size_t C = static_cast<size_t>(a.loss_chunk);
  int max_rank = 0;
  for (int m = 0; m < kNumModules; ++m) max_rank = std::max(max_rank, c.lora_rank[m]);

  a.ids = cur.take<int32_t>(R);
  a.pos = cur.take<int32_t>(R);
  a.seg = cur.take<int32_t>(R);
  a.targets = cur.take<int32_t>(R);

  const int n_resid = c.train ? d.L + 1 : 1;
  for (int i = 0; i < n_resid; ++i) a.resid.push_back(cur.take<float>(R * d.D));

  // The norms' outputs are cheap to recompute from the kept inputs and rstd,
  // so every layer writes them to one shared buffer (backward recomputes).
  float* norm_out = cur.take<float>(R * d.D);
  const int n_sets = c.train && !c.checkpoint ? d.L : 1;
  for (int i = 0; i < n_sets; ++i) {
    LayerActs l;
    l.rstd1 = cur.take<float>(R);
    l.a = norm_out;
    if (d.qk_norm) {
      l.q_pre = cur.take<float>(R * d.Dq);
      l.rstd_q = cur.take<float>(R * d.Hq);
      l.k_pre = cur.take<float>(R * d.Dkv);
      l.rstd_k = cur.take<float>(R * d.Hkv);
    }
    l.q = cur.take<float>(R * d.Dq);
    l.k = cur.take<float>(R * d.Dkv);
    l.v = cur.take<float>(R * d.Dkv);
    l.attn = cur.take<float>(R * d.Dq);
    l.lse = cur.take<float>(R * d.Hq);
    if (c.train) l.h_mid = cur.take<float>(R * d.D);
    l.rstd2 = cur.take<float>(R);
    l.m = norm_out;
    l.gate = cur.take<float>(R * d.F);
    l.up = cur.take<float>(R * d.F);
    if (c.train)
      for (int m = 0; m < kNumModules; ++m) l.lora_h[m] = cur.take<float>(R * c.lora_rank[m]);
    a.layers.push_back(l);
  }
  if (!c.train) {
    // Evaluation keeps nothing: every adapted module shares one H scratch.
    a.lora_tmp = cur.take<float>(R * max_rank);
    for (auto& l : a.layers)
      for (int m = 0; m < kNumModules; ++m)
        if (c.lora_rank[m]) l.lora_h[m] = a.lora_tmp;
  }

  a.act = cur.take<float>(R * d.F);
  a.rstd_f = cur.take<float>(R);
  a.hf = cur.take<float>(R * d.D);
  a.hchunk = cur.take<float>(C * d.D);
  a.logits = cur.take<float>(C * d.V);

  if (c.train) {
    a.dchunk = cur.take<float>(C * d.D);
    a.dh = cur.take<float>(R * d.D);
    a.dnorm = cur.take<float>(R * d.D);
    a.dq = cur.take<float>(R * d.Dq);
    a.dk = cur.take<float>(R * d.Dkv);
    a.dv = cur.take<float>(R * d.Dkv);
    a.dattn = cur.take<float>(R * d.Dq);
    a.dact = cur.take<float>(R * d.F);
    a.dup = cur.take<float>(R * d.F);
    a.lora_dh = cur.take<float>(R * max_rank);
    if (c.lora_dropout && max_rank > 0) {
      a.dropped = cur.take<float>(R * d.max_linear_in());
      a.d_dropped = cur.take<float>(R * d.max_linear_in());
    }
  }
  if (out) *out = a;
  if (bytes) *bytes = cur.offset();
}

}  // namespace

ActivationPlan::ActivationPlan(const PlanConfig& config) : config_(config) {
  layout(config_, nullptr, nullptr, &bytes_);
}

Activations ActivationPlan::bind(void* base) const {
  Activations a;
  layout(config_, static_cast<char*>(base), &a, nullptr);
  return a;
}

}  // namespace ps
