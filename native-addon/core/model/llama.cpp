#include "model/llama.h"

#include <algorithm>

#include "error.h"
#include "methods/lora.h"
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
  p.embed = W(kEmbedName);
  p.dembed = G(kEmbedName);
  p.head.norm = W(kNormName);
  p.head.dnorm = G(kNormName);
  p.head.W = d.tied ? p.embed : W(kLmHeadName);
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
      lin.W = W(base + ".weight");
      lin.dW = G(base + ".weight");
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
  return c;
}

namespace {
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

  be_.embedding_forward(a.ids, pb.rows, p.embed, d_.D, a.resid[0]);
  for (int l = 0; l < L; ++l) {
    LayerActs& s = acts(l);
    attention_block_forward(c, l, p.layers[l], a.resid[l], s.h_mid, s, nullptr);
    mlp_block_forward(c, l, p.layers[l], s.h_mid, a.resid[l + 1], s);
  }
  const LossResult result = loss_head(c, p.head, a.resid[L], pb.runs, pass.grad_scale, true, a.dh);

  for (int l = L - 1; l >= 0; --l) {
    LayerActs& s = acts(l);
    if (pass.checkpoint && l != L - 1) {
      // Recompute this layer from its saved input (the last layer's is still there).
      attention_block_forward(c, l, p.layers[l], a.resid[l], s.h_mid, s, nullptr);
      mlp_block_forward(c, l, p.layers[l], s.h_mid, nullptr, s);
    }
    mlp_block_backward(c, l, p.layers[l], s.h_mid, s, a.dh);
    // Below layer 0 only the embedding table could use the gradient.
    attention_block_backward(c, l, p.layers[l], a.resid[l], s, a.dh, l > 0 || p.dembed);
  }
  if (p.dembed) be_.embedding_backward(a.ids, pb.rows, a.dh, d_.D, p.dembed);
  return result;
}

LossResult LlamaModel::evaluate(const ModelParams& p, Activations& a, const Batch& batch,
                                const PreparedBatch& pb) {
  if (pb.runs.empty()) return {};
  ensure_rope(pb.max_position + 1);
  upload_batch(be_, a, batch, pb);
  PassContext c = context(a, pb.B, pb.T);
  float* h = a.resid[0];  // the residual stream is updated in place
  be_.embedding_forward(a.ids, pb.rows, p.embed, d_.D, h);
  for (int l = 0; l < d_.L; ++l) {
    attention_block_forward(c, l, p.layers[l], h, h, a.layers[0], nullptr);
    mlp_block_forward(c, l, p.layers[l], h, h, a.layers[0]);
  }
  return loss_head(c, p.head, h, pb.runs, 1.0f, false, nullptr);
}

const float* LlamaModel::decode(const ModelParams& p, Activations& a, KvCache& cache,
                                const int32_t* tokens, size_t n) {
  if (n == 0) throw Error("decode: no tokens given");
  if (cache.capacity == 0) throw Error("decode: call resetCache(maxTokens) before decoding");
  if (static_cast<size_t>(cache.capacity - cache.length) < n)
    throw Error("decode: the sequence would reach " + std::to_string(cache.length + n) +
                " tokens but resetCache reserved " + std::to_string(cache.capacity) +
                ": start a new generation with a larger maxTokens");
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= d_.V)
      throw Error("decode: token " + std::to_string(tokens[i]) + " is not a token id of this model (0.." +
                  std::to_string(d_.V - 1) + ")");
  ensure_rope(cache.length + static_cast<int>(n));
  std::vector<int32_t> pos(a.rows), seg(a.rows, 0);
  float* h = a.resid[0];
  int last_rows = 0;
  for (size_t done = 0; done < n;) {
    const int chunk = static_cast<int>(std::min<size_t>(n - done, a.rows));
    for (int i = 0; i < chunk; ++i) pos[i] = cache.length + i;
    be_.upload(a.ids, tokens + done, chunk * sizeof(int32_t));
    be_.upload(a.pos, pos.data(), chunk * sizeof(int32_t));
    be_.upload(a.seg, seg.data(), chunk * sizeof(int32_t));
    PassContext c = context(a, 1, chunk);
    be_.embedding_forward(a.ids, chunk, p.embed, d_.D, h);
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
