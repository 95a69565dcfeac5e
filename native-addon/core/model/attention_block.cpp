// The attention half of a decoder layer (Hugging Face LlamaAttention /
// Qwen2Attention / Qwen3Attention): input_layernorm, q/k/v projections
// (+ biases), Qwen3's per-head q/k RMSNorm before RoPE, RoPE (rotate_half),
// causal grouped-query attention with scale 1/sqrt(head_dim) (with prefix
// tuning over the layer's prefix keys/values first, used as stored), o_proj, residual.
#include <cmath>

#include "methods/prefix_tuning.h"
#include "model/blocks.h"
#include "rng.h"

namespace ps {

LinearScratch linear_scratch(const PassContext& c, const LayerActs& s, const Linear& lin, int layer,
                             int module) {
  LinearScratch x;
  if (!lin.lora) return x;
  x.lora_h = s.lora_h[module];
  x.lora_dh = c.arena->lora_dh;
  x.dropped = c.arena->dropped;
  x.d_dropped = c.arena->d_dropped;
  x.dora_t = c.arena->dora_t;
  x.dora_g = c.arena->dora_g;
  x.dropout_active = c.train && lin.lora->dropout > 0.0f;
  // Each adapted module has its own mask, as each PEFT LoRA layer owns its nn.Dropout.
  x.dropout_key = mix_key({c.step_key, static_cast<uint64_t>(layer), static_cast<uint64_t>(module)});
  return x;
}

namespace {
AttnShape shape_of(const PassContext& c, int past) {
  AttnShape s;
  s.B = c.B;
  s.T = c.T;
  s.P = past;
  s.Hq = c.d.Hq;
  s.Hkv = c.d.Hkv;
  s.D = c.d.hd;
  return s;
}
float attn_scale(const ModelDims& d) { return 1.0f / std::sqrt(static_cast<float>(d.hd)); }
size_t prefix_stride(const ModelDims& d) { return 2 * static_cast<size_t>(d.L) * d.Dkv; }
// arena kx/vx = [this layer's prefix keys/values; the layer's own k/v] per batch row.
void assemble_prefix_kv(const PassContext& c, int layer, const LayerActs& s) {
  const ModelDims& d = c.d;
  const float* keys = c.prefix_table + 2 * static_cast<size_t>(layer) * d.Dkv;
  prefix_concat(c.be, keys, prefix_stride(d), c.prefix, s.k, c.B, c.T, d.Dkv, c.arena->kx);
  prefix_concat(c.be, keys + d.Dkv, prefix_stride(d), c.prefix, s.v, c.B, c.T, d.Dkv, c.arena->vx);
}
}  // namespace

void attention_block_forward(const PassContext& c, int layer, const LayerParams& p, const float* x,
                             float* h_out, LayerActs& s, const KvView* kv) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  const int R = c.rows;
  be.rmsnorm_forward(x, p.ln1, s.a, s.rstd1, R, d.D, c.eps);

  // New keys/values go to the cache when decoding, else to the layer's own buffers.
  float* k_new = kv ? kv->k + static_cast<size_t>(kv->past) * d.Dkv : s.k;
  float* v_new = kv ? kv->v + static_cast<size_t>(kv->past) * d.Dkv : s.v;
  float* q_out = d.qk_norm ? s.q_pre : s.q;
  float* k_out = d.qk_norm ? s.k_pre : k_new;
  const Linear* lin = p.lin;
  linear_forward(be, lin[kQ], R, s.a, q_out, false, linear_scratch(c, s, lin[kQ], layer, kQ));
  linear_forward(be, lin[kK], R, s.a, k_out, false, linear_scratch(c, s, lin[kK], layer, kK));
  linear_forward(be, lin[kV], R, s.a, v_new, false, linear_scratch(c, s, lin[kV], layer, kV));
  const size_t nq = static_cast<size_t>(R) * d.Dq, nkv = static_cast<size_t>(R) * d.Dkv;
  if (d.qk_norm) {
    keep_product(c, s.q_pre, s.kept.q_pre, nq);
    keep_product(c, s.k_pre, s.kept.k_pre, nkv);
    be.rmsnorm_forward(s.q_pre, p.q_norm, s.q, s.rstd_q, R * d.Hq, d.hd, c.eps);
    be.rmsnorm_forward(s.k_pre, p.k_norm, k_new, s.rstd_k, R * d.Hkv, d.hd, c.eps);
  }
  be.rope_forward(s.q, c.pos, R, d.Hq, d.hd, c.rope_cos, c.rope_sin);
  be.rope_forward(k_new, c.pos, R, d.Hkv, d.hd, c.rope_cos, c.rope_sin);
  // What attention reads, as it will read it again in backward (a decoding
  // pass's keys/values go to the cache in bf16 values too, kept nowhere else).
  keep_product(c, s.q, s.kept.q, nq);
  keep_product(c, k_new, kv ? nullptr : s.kept.k, nkv);
  keep_product(c, v_new, kv ? nullptr : s.kept.v, nkv);

  if (c.prefix && !kv) {
    // Prefix tuning: the layer's prefix in front of every batch row's keys/values.
    assemble_prefix_kv(c, layer, s);
    be.attention_forward(shape_of(c, c.prefix), s.q, c.arena->kx, c.arena->vx, c.seg, attn_scale(d), s.attn,
                         s.lse);
  } else {
    const AttnShape shape = shape_of(c, kv ? kv->past : 0);
    be.attention_forward(shape, s.q, kv ? kv->k : s.k, kv ? kv->v : s.v, c.seg, attn_scale(d), s.attn,
                         s.lse);
  }

  keep_product(c, s.attn, s.kept.attn, nq);

  if (h_out != x) be.copy(h_out, x, static_cast<size_t>(R) * d.D);
  linear_forward(be, lin[kO], R, s.attn, h_out, true, linear_scratch(c, s, lin[kO], layer, kO));
}

void attention_block_backward(const PassContext& c, int layer, const LayerParams& p, const float* x,
                              const LayerActs& s, float* dh, bool need_dx) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  Activations& g = *c.arena;
  const int R = c.rows;
  const Linear* lin = p.lin;
  const size_t nq = static_cast<size_t>(R) * d.Dq, nkv = static_cast<size_t>(R) * d.Dkv;
  restore_product(c, s.kept.attn, s.attn, nq);
  restore_product(c, s.kept.q, s.q, nq);
  restore_product(c, s.kept.k, s.k, nkv);
  restore_product(c, s.kept.v, s.v, nkv);
  restore_product(c, s.kept.q_pre, s.q_pre, nq);
  restore_product(c, s.kept.k_pre, s.k_pre, nkv);

  // o_proj: dh is the gradient of its output (the residual passes it through unchanged).
  linear_backward(be, lin[kO], R, s.attn, dh, g.dattn, true, linear_scratch(c, s, lin[kO], layer, kO));

  be.fill(g.dq, 0.0f, nq);
  be.fill(g.dk, 0.0f, nkv);
  be.fill(g.dv, 0.0f, nkv);
  if (c.prefix) {
    // The concatenation is rebuilt (the buffers are shared by every layer);
    // the prefix rows' gradient is summed over the batch rows into the table.
    assemble_prefix_kv(c, layer, s);
    const size_t n = static_cast<size_t>(R + c.B * c.prefix) * d.Dkv;
    be.fill(g.dkx, 0.0f, n);
    be.fill(g.dvx, 0.0f, n);
    be.attention_backward(shape_of(c, c.prefix), s.q, g.kx, g.vx, c.seg, attn_scale(d), s.attn, s.lse, g.dattn,
                          g.dq, g.dkx, g.dvx);
    const size_t stride = prefix_stride(d);
    float* dk_table = c.dprefix_table ? c.dprefix_table + 2 * static_cast<size_t>(layer) * d.Dkv : nullptr;
    float* dv_table = c.dprefix_table ? dk_table + d.Dkv : nullptr;
    prefix_split_grad(be, g.dkx, c.prefix, c.B, c.T, d.Dkv, g.dk, dk_table, stride);
    prefix_split_grad(be, g.dvx, c.prefix, c.B, c.T, d.Dkv, g.dv, dv_table, stride);
  } else {
    be.attention_backward(shape_of(c, 0), s.q, s.k, s.v, c.seg, attn_scale(d), s.attn, s.lse, g.dattn,
                          g.dq, g.dk, g.dv);
  }
  be.rope_backward(g.dq, c.pos, R, d.Hq, d.hd, c.rope_cos, c.rope_sin);
  be.rope_backward(g.dk, c.pos, R, d.Hkv, d.hd, c.rope_cos, c.rope_sin);

  // Gradient wrt the norm output: needed for x's gradient or the norm's weight.
  float* da = (need_dx || p.dln1) ? g.dnorm : nullptr;
  // The norm's output is not kept per layer (activations.h): recompute it,
  // bit-identical to forward, for the q/k/v products.
  be.rmsnorm_forward(x, p.ln1, s.a, s.rstd1, R, d.D, c.eps);
  const float* dq_proj = g.dq;
  if (d.qk_norm) {
    // dattn is free again: it takes the gradient wrt q before its norm.
    be.fill(g.dattn, 0.0f, nq);
    be.rmsnorm_backward(g.dq, s.q_pre, p.q_norm, s.rstd_q, R * d.Hq, d.hd, g.dattn, p.dq_norm);
    dq_proj = g.dattn;
  }
  linear_backward(be, lin[kQ], R, s.a, dq_proj, da, true, linear_scratch(c, s, lin[kQ], layer, kQ));
  const float* dk_proj = g.dk;
  if (d.qk_norm) {
    be.fill(g.dattn, 0.0f, nkv);
    be.rmsnorm_backward(g.dk, s.k_pre, p.k_norm, s.rstd_k, R * d.Hkv, d.hd, g.dattn, p.dk_norm);
    dk_proj = g.dattn;
  }
  linear_backward(be, lin[kK], R, s.a, dk_proj, da, false, linear_scratch(c, s, lin[kK], layer, kK));
  linear_backward(be, lin[kV], R, s.a, g.dv, da, false, linear_scratch(c, s, lin[kV], layer, kV));
  if (da) be.rmsnorm_backward(da, x, p.ln1, s.rstd1, R, d.D, need_dx ? dh : nullptr, p.dln1);
}

}  // namespace ps
