#include "model/llama.h"

#include <algorithm>

#include "error.h"
#include "methods/lora.h"
#include "methods/prefix_tuning.h"
#include "methods/neftune.h"
#include "methods/prompt_tuning.h"
#include "model/batch_inputs.h"
#include "model/tensor_names.h"
#include "model/weights.h"
#include "rope_tables.h"

namespace ps {

ModelParams bind_params(const ModelDims& d, const WeightStore& w, const LoraAdapters* lora,
                        const std::function<float*(const std::string&)>& grad_of) {
  auto W = [&](const std::string& name) -> const float* { return w.get(name).data; };
  auto G = [&](const std::string& name) -> float* { return grad_of(name); };
  ModelParams p;
  const WeightTensor& embed = w.get(kEmbedName);
  p.embed = embed.data;
  p.embed16 = embed.half;
  p.embed_bf16 = embed.half_bf16;
  p.dembed = G(kEmbedName);
  p.head.norm = W(kNormName);
  p.head.dnorm = G(kNormName);
  const WeightTensor& head = d.tied ? embed : w.get(kLmHeadName);
  p.head.W = head.data;
  p.head.W16 = head.half;
  p.head.W16_bf16 = head.half_bf16;
  p.head.dW = d.tied ? p.dembed : G(kLmHeadName);
  const int in[kNumModules] = {d.D, d.D, d.D, d.Dq, d.D, d.D, d.F};
  const int out[kNumModules] = {d.Dq, d.Dkv, d.Dkv, d.D, d.F, d.F, d.D};
  p.layers.resize(d.L);
  for (int l = 0; l < d.L; ++l) {
    LayerParams& lp = p.layers[l];
    const std::string ln1 = layer_tensor_name(l, "input_layernorm.weight");
    const std::string ln2 = layer_tensor_name(l, "post_attention_layernorm.weight");
    lp.ln1 = W(ln1);
    lp.dln1 = G(ln1);
    lp.ln2 = W(ln2);
    lp.dln2 = G(ln2);
    if (d.qk_norm) {
      const std::string qn = layer_tensor_name(l, "self_attn.q_norm.weight");
      const std::string kn = layer_tensor_name(l, "self_attn.k_norm.weight");
      lp.q_norm = W(qn);
      lp.dq_norm = G(qn);
      lp.k_norm = W(kn);
      lp.dk_norm = G(kn);
    }
    for (int m = 0; m < kNumModules; ++m) {
      Linear& lin = lp.lin[m];
      const std::string base = module_path(l, m);
      lin.in = in[m];
      lin.out = out[m];
      const WeightTensor& wt = w.get(base + ".weight");
      if (wt.is_nf4()) {
        lin.W4 = wt.op_view();  // frozen: no gradient of a 4-bit weight
      } else if (wt.half) {
        lin.W16 = wt.half_view();  // frozen (a trainable weight is made fp32 by WeightStore::writable)
      } else {
        lin.W = wt.data;
        lin.dW = G(base + ".weight");
      }
      const bool bias = m <= kV ? d.qkv_bias : m == kO ? d.o_bias : false;
      if (bias) {
        lin.b = W(base + ".bias");
        lin.db = G(base + ".bias");
      }
      lin.lora = lora ? lora->get(l, m) : nullptr;
    }
  }
  return p;
}

LlamaModel::LlamaModel(Backend& be, const ModelSpec& spec) : be_(be), spec_(spec), d_(spec) {}

LlamaModel::~LlamaModel() {
  if (rope_cos_) be_.release(rope_cos_);
  if (rope_sin_) be_.release(rope_sin_);
}

void LlamaModel::ensure_rope(int positions) {
  if (positions <= rope_len_) return;
  // Grow geometrically from the configured context, so a run sizes the tables once.
  int len = std::max(rope_len_, std::min(spec_.max_position_embeddings, 8192));
  while (len < positions) len = len > kMaxPosition / 2 ? kMaxPosition : len * 2;
  const size_t half = static_cast<size_t>(d_.hd / 2);
  std::vector<float> cos(static_cast<size_t>(len) * half), sin(cos.size());
  build_rope_tables(spec_, len, cos.data(), sin.data());
  float* c = static_cast<float*>(be_.alloc(cos.size() * sizeof(float)));
  float* s = static_cast<float*>(be_.alloc(sin.size() * sizeof(float)));
  be_.upload(c, cos.data(), cos.size() * sizeof(float));
  be_.upload(s, sin.data(), sin.size() * sizeof(float));
  if (rope_cos_) be_.release(rope_cos_);
  if (rope_sin_) be_.release(rope_sin_);
  rope_cos_ = c;
  rope_sin_ = s;
  rope_len_ = len;
}

PassContext LlamaModel::context(Activations& a, int B, int T) const {
  PassContext c{be_, d_};
  c.eps = spec_.rms_norm_eps;
  c.B = B;
  c.T = T;
  c.rows = B * T;
  c.pos = a.pos;
  c.seg = a.seg;
  c.rope_cos = rope_cos_;
  c.rope_sin = rope_sin_;
  c.arena = &a;
  c.bf16_activations = be_.bf16_activations();
  return c;
}

namespace {
// out[r] = table[ids[r]]; a 16-bit table's rows are widened as they are looked up.
// ids: the backend's copy (for the fp32 lookup op); host_ids: the same ids in
// host memory (the 16-bit path picks its rows on the host; backend memory
// may be a GPU's).
// ids: the arena's backend copy of the tokens (checked against the
// vocabulary before any pass). A 16-bit table (QLoRA) is widened row by row
// inside one op: one call for all rows, not one per token.
void embed_rows(Backend& be, const ModelParams& p, const int32_t* ids, int rows, int vocab, int D, float* out) {
  if (p.embed) {
    be.embedding_forward(ids, rows, p.embed, D, out);
    return;
  }
  be.embedding_forward_half(ids, rows, p.embed16, p.embed_bf16, vocab, D, out);
}

void upload_batch(Backend& be, Activations& a, const Batch& b, const PreparedBatch& pb) {
  const size_t bytes = static_cast<size_t>(pb.rows) * sizeof(int32_t);
  if (pb.rows > a.rows) throw Error("internal: activation arena smaller than the batch");
  be.upload(a.ids, b.input_ids.data(), bytes);
  be.upload(a.pos, b.positions.data(), bytes);
  be.upload(a.seg, b.segments.data(), bytes);
  if (!pb.targets.empty()) be.upload(a.targets, pb.targets.data(), pb.targets.size() * sizeof(int32_t));
}
}  // namespace

LossResult LlamaModel::forward_backward(const ModelParams& p, Activations& a, const Batch& batch,
                                        const PreparedBatch& pb, const TrainPass& pass) {
  if (pb.runs.empty()) return {};  // nothing to learn from: no gradient, no work
  ensure_rope(pb.max_position + 1);
  upload_batch(be_, a, batch, pb);
  PassContext c = context(a, pb.B, pb.T);
  c.train = pass.dropout;
  c.step_key = pass.step_key;
  const int L = d_.L;
  auto acts = [&](int l) -> LayerActs& { return a.layers[pass.checkpoint ? 0 : l]; };

  embed_rows(be_, p, a.ids, pb.rows, d_.V, d_.D, a.resid[0]);
  // NEFTune's noise on the token embeddings; a soft prompt then replaces its rows as it is.
  if (pass.neftune_magnitude > 0.0f)
    be_.add_uniform_noise(a.resid[0], static_cast<size_t>(pb.rows) * d_.D, pass.neftune_magnitude,
                          neftune_key(pass.step_key));
  if (p.prompt) insert_prompt(be_, p.prompt->embeddings(), p.prompt->tokens(), pb.B, pb.T, d_.D, a.resid[0]);
  bind_prefix(p, a, c, true);
  for (int l = 0; l < L; ++l) {
    LayerActs& s = acts(l);
    attention_block_forward(c, l, p.layers[l], a.resid[l], s.h_mid, s, nullptr);
    mlp_block_forward(c, l, p.layers[l], s.h_mid, a.resid[l + 1], s);
  }
  const LossResult result = loss_head(c, p.head, a.resid[L], pb.runs, pass.grad_scale, true, a.dh);

  for (int l = L - 1; l >= 0; --l) {
    LayerActs& s = acts(l);
    if (l != L - 1 && (pass.checkpoint || a.shared_attention)) {
      // Recompute from the layer's saved input (the last layer's buffers still
      // hold its values): the attention block when its buffers are shared
      // (activations.cpp), the MLP's gate/up too when checkpointing.
      attention_block_forward(c, l, p.layers[l], a.resid[l], s.h_mid, s, nullptr);
      if (pass.checkpoint) mlp_block_forward(c, l, p.layers[l], s.h_mid, nullptr, s);
    }
    mlp_block_backward(c, l, p.layers[l], s.h_mid, s, a.dh);
    // Below layer 0 only the embedding table or a soft prompt could use the gradient.
    attention_block_backward(c, l, p.layers[l], a.resid[l], s, a.dh, l > 0 || p.dembed || p.prompt);
  }
  if (p.dembed) be_.embedding_backward(a.ids, pb.rows, a.dh, d_.D, p.dembed);
  if (p.prompt) prompt_backward(be_, a.dh, p.prompt->tokens(), pb.B, pb.T, d_.D, p.prompt->gradient());
  if (p.prefix && p.prefix->projection())
    p.prefix->project_backward(a.prefix_hidden, a.dprefix_table, a.dprefix_hidden);
  return result;
}

LossResult LlamaModel::evaluate(const ModelParams& p, Activations& a, const Batch& batch,
                                const PreparedBatch& pb) {
  if (pb.runs.empty()) return {};
  ensure_rope(pb.max_position + 1);
  upload_batch(be_, a, batch, pb);
  PassContext c = context(a, pb.B, pb.T);
  float* h = a.resid[0];  // the residual stream is updated in place
  embed_rows(be_, p, a.ids, pb.rows, d_.V, d_.D, h);
  if (p.prompt) insert_prompt(be_, p.prompt->embeddings(), p.prompt->tokens(), pb.B, pb.T, d_.D, h);
  bind_prefix(p, a, c, false);
  for (int l = 0; l < d_.L; ++l) {
    attention_block_forward(c, l, p.layers[l], h, h, a.layers[0], nullptr);
    mlp_block_forward(c, l, p.layers[l], h, h, a.layers[0]);
  }
  return loss_head(c, p.head, h, pb.runs, 1.0f, false, nullptr);
}

void LlamaModel::bind_prefix(const ModelParams& p, Activations& a, PassContext& c, bool train) const {
  if (!p.prefix) return;
  const PrefixTuning& pt = *p.prefix;
  c.prefix = pt.tokens();
  if (!pt.projection()) {
    c.prefix_table = pt.table();
    c.dprefix_table = train ? pt.table_gradient() : nullptr;
    return;
  }
  if (!a.prefix_table) throw Error("internal: the activation arena has no room for the prefix table");
  pt.project(a.prefix_hidden, a.prefix_table);
  c.prefix_table = a.prefix_table;
  c.dprefix_table = train ? a.dprefix_table : nullptr;
  if (train) be_.fill(a.dprefix_table, 0.0f, static_cast<size_t>(pt.tokens()) * pt.width());
}

const float* LlamaModel::decode(const ModelParams& p, Activations& a, KvCache& cache,
                                const int32_t* tokens, size_t n) {
  if (n == 0) throw Error("decode: no tokens given");
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= d_.V)
      throw Error("decode: token " + std::to_string(tokens[i]) + " is not a token id of this model (0.." +
                  std::to_string(d_.V - 1) + ")");
  return decode_rows(p, a, cache, tokens, nullptr, n);
}

const float* LlamaModel::decode_embeddings(const ModelParams& p, Activations& a, KvCache& cache,
                                           const float* embeds, size_t n) {
  if (n == 0) throw Error("decode: no embeddings given");
  return decode_rows(p, a, cache, nullptr, embeds, n);
}

const float* LlamaModel::decode_rows(const ModelParams& p, Activations& a, KvCache& cache,
                                     const int32_t* tokens, const float* embeds, size_t n) {
  if (cache.capacity == 0) throw Error("decode: call resetCache(maxTokens) before decoding");
  if (static_cast<size_t>(cache.capacity - cache.length) < n)
    throw Error("decode: the sequence would reach " + std::to_string(cache.length - cache.virtual_tokens + n) +
                " tokens but resetCache reserved " + std::to_string(cache.capacity - cache.virtual_tokens) +
                ": start a new generation with a larger maxTokens");
  ensure_rope(cache.length + static_cast<int>(n));
  std::vector<int32_t> pos(a.rows), seg(a.rows, 0);
  float* h = a.resid[0];
  int last_rows = 0;
  for (size_t done = 0; done < n;) {
    const int chunk = static_cast<int>(std::min<size_t>(n - done, a.rows));
    for (int i = 0; i < chunk; ++i) pos[i] = cache.length + i;
    be_.upload(a.pos, pos.data(), chunk * sizeof(int32_t));
    be_.upload(a.seg, seg.data(), chunk * sizeof(int32_t));
    PassContext c = context(a, 1, chunk);
    if (embeds) {
      be_.copy(h, embeds + done * d_.D, static_cast<size_t>(chunk) * d_.D);
    } else {
      be_.upload(a.ids, tokens + done, chunk * sizeof(int32_t));
      embed_rows(be_, p, a.ids, chunk, d_.V, d_.D, h);
    }
    for (int l = 0; l < d_.L; ++l) {
      KvView kv{cache.k[l], cache.v[l], cache.length};
      attention_block_forward(c, l, p.layers[l], h, h, a.layers[0], &kv);
      mlp_block_forward(c, l, p.layers[l], h, h, a.layers[0]);
    }
    cache.length += chunk;
    done += chunk;
    last_rows = chunk;
  }
  PassContext c = context(a, 1, last_rows);
  return head_logits_row(c, p.head, h, last_rows - 1);
}

}  // namespace ps
