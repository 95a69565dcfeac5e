#include "model/activations.h"

#include <algorithm>

#include "methods/lora.h"

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
  a.shared_attention = c.train && !c.checkpoint && c.share_attention;
  // bf16 activations with one set per layer: each layer keeps the 16 bits of
  // its products (Bf16Kept), and one fp32 working set, taken here, serves
  // every layer (backward widens a layer's bits back into it).
  const bool kept16 = c.bf16_activations && n_sets > 1;
  LayerActs work;
  if (kept16) {
    if (!a.shared_attention) {
      if (d.qk_norm) {
        work.q_pre = cur.take<float>(R * d.Dq);
        work.k_pre = cur.take<float>(R * d.Dkv);
      }
      work.q = cur.take<float>(R * d.Dq);
      work.k = cur.take<float>(R * d.Dkv);
      work.v = cur.take<float>(R * d.Dkv);
      work.attn = cur.take<float>(R * d.Dq);
    }
    work.gate = cur.take<float>(R * d.F);
    work.up = cur.take<float>(R * d.F);
  }
  // A product of `n` values: the layer's own fp32 buffer, or (kept16) the
  // shared working buffer plus the layer's own 16-bit copy. The last layer
  // needs no copy: its values are still in the working set when backward
  // starts (the loss head uses buffers of its own).
  auto product = [&](bool in16, bool last, float* shared, uint16_t*& bits, size_t n) -> float* {
    if (!in16) return cur.take<float>(n);
    if (!last) bits = cur.take<uint16_t>(n);
    return shared;
  };
  // The attention block's buffers (rstd1 ... h_mid, the LoRA H of q/k/v/o):
  // one set per layer, or with share_attention one set every layer shares,
  // which backward refills by recomputing the block from the layer's kept
  // input (the same ops on the same inputs, so the same bits). That costs the
  // block's forward again and saves about a third of what a layer keeps. The
  // MLP's gate/up (its two largest products) are always kept per layer.
  auto take_attention = [&](bool in16, bool last) {
    LayerActs s;
    s.rstd1 = cur.take<float>(R);
    s.a = norm_out;
    if (d.qk_norm) {
      s.q_pre = product(in16, last, work.q_pre, s.kept.q_pre, R * d.Dq);
      s.rstd_q = cur.take<float>(R * d.Hq);
      s.k_pre = product(in16, last, work.k_pre, s.kept.k_pre, R * d.Dkv);
      s.rstd_k = cur.take<float>(R * d.Hkv);
    }
    s.q = product(in16, last, work.q, s.kept.q, R * d.Dq);
    s.k = product(in16, last, work.k, s.kept.k, R * d.Dkv);
    s.v = product(in16, last, work.v, s.kept.v, R * d.Dkv);
    s.attn = product(in16, last, work.attn, s.kept.attn, R * d.Dq);
    s.lse = cur.take<float>(R * d.Hq);
    if (c.train) {
      s.h_mid = cur.take<float>(R * d.D);
      for (int m : {kQ, kK, kV, kO}) s.lora_h[m] = cur.take<float>(R * c.lora_rank[m]);
    }
    return s;
  };
  LayerActs shared_set;
  if (a.shared_attention || n_sets == 1) shared_set = take_attention(false, false);
  for (int i = 0; i < n_sets; ++i) {
    const bool last = i == n_sets - 1;
    LayerActs l = a.shared_attention || n_sets == 1 ? shared_set : take_attention(kept16, last);
    l.rstd2 = cur.take<float>(R);
    l.m = norm_out;
    l.gate = product(kept16, last, work.gate, l.kept.gate, R * d.F);
    l.up = product(kept16, last, work.up, l.kept.up, R * d.F);
    if (c.train)
      for (int m : {kGate, kUp, kDown}) l.lora_h[m] = cur.take<float>(R * c.lora_rank[m]);
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

  const size_t P = static_cast<size_t>(c.prefix_tokens);
  const size_t R_kv = R + static_cast<size_t>(c.batch) * P;  // key rows with every batch row's prefix
  if (P) {
    a.kx = cur.take<float>(R_kv * d.Dkv);
    a.vx = cur.take<float>(R_kv * d.Dkv);
  }
  const size_t prefix_width = 2 * static_cast<size_t>(d.L) * d.Dkv;
  const size_t H = static_cast<size_t>(c.prefix_hidden);
  if (P && H) {
    a.prefix_table = cur.take<float>(P * prefix_width);
    a.prefix_hidden = cur.take<float>(P * H);
  }

  if (c.dora && max_rank > 0) {
    int widest = 0;
    for (int m = 0; m < kNumModules; ++m)
      if (c.lora_rank[m]) widest = std::max(widest, module_out_features(d, m));
    a.dora_t = cur.take<float>(R * widest);
    if (c.train) a.dora_g = cur.take<float>(R * widest);
  }

  if (c.train) {
    if (P) {
      a.dkx = cur.take<float>(R_kv * d.Dkv);
      a.dvx = cur.take<float>(R_kv * d.Dkv);
      if (H) {
        a.dprefix_table = cur.take<float>(P * prefix_width);
        a.dprefix_hidden = cur.take<float>(P * H);
      }
    }
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
