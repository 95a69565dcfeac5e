// An independent float64 transcription of what PEFT's prompt learning does to
// a Hugging Face Llama-family forward, one sequence at a time (PEFT has no
// packing), written from PeftModelForCausalLM.forward with plain loops:
//  - prompt tuning: inputs_embeds = cat(prompt_embeddings, embed(input_ids)),
//    positions 0..nvt+n-1, labels = cat([-100] * nvt, labels);
//  - prefix tuning: past_key_values of length nvt, read from the table
//    [nvt, 2L, Hkv, hd] (layer l: keys slice 2l, values 2l+1), used as stored
//    (a cache holds keys after RoPE, so nothing rotates them again), every
//    real token sees all of them, real positions nvt..nvt+n-1.
// It shares no code with the engine (only ref::Llama::inv_freq for the RoPE
// frequencies, itself an independent transcription).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine.h"
#include "reference_llama.h"
#include "tiny_model.h"

namespace ref {

struct PromptAdapter {
  int nvt = 0;
  std::vector<float> prompt;        // prompt tuning: [nvt, D] (empty otherwise)
  std::vector<float> prefix_table;  // prefix tuning: [nvt, L * 2 * Dkv] (empty otherwise)
  // NEFTune: added to the real tokens' embeddings [n, D] (not the prompt's) when not empty
  std::vector<double> embed_noise;
};

class PromptLlama {
 public:
  PromptLlama(const ps::ModelSpec& spec, const tiny::Weights& w) : s_(spec), base_(spec, w) {
    if (s_.head_dim == 0) s_.head_dim = s_.hidden_size / s_.num_heads;
  }

  // Logits [N, V] of every position of the sequence the model runs: with
  // prompt tuning N = nvt + n (virtual rows first), otherwise N = n.
  std::vector<double> logits(const PromptAdapter& ad, const std::vector<int>& ids) const {
    const int D = s_.hidden_size, F = s_.intermediate_size, Hq = s_.num_heads, Hkv = s_.num_kv_heads,
              hd = s_.head_dim, V = s_.vocab_size, L = s_.num_layers;
    const int Dq = Hq * hd, Dkv = Hkv * hd;
    const bool prompt = !ad.prompt.empty(), prefix = !ad.prefix_table.empty();
    const int lead = prompt ? ad.nvt : 0;  // virtual rows in the sequence
    const int P = prefix ? ad.nvt : 0;     // cached positions before it
    const int N = lead + static_cast<int>(ids.size());
    std::vector<double> h(static_cast<size_t>(N) * D);
    const auto& E = base_.W("model.embed_tokens.weight");
    for (int t = 0; t < N; ++t)
      for (int i = 0; i < D; ++i)
        h[t * D + i] = t < lead ? ad.prompt[t * D + i]
                                : E[static_cast<size_t>(ids[t - lead]) * D + i] +
                                      (ad.embed_noise.empty() ? 0.0 : ad.embed_noise[static_cast<size_t>(t - lead) * D + i]);
    std::vector<int> pos(N);
    for (int t = 0; t < N; ++t) pos[t] = P + t;
    const std::vector<double> freq = base_.inv_freq();
    const bool o_bias = s_.attention_bias && s_.architecture != "Qwen2ForCausalLM";
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (int l = 0; l < L; ++l) {
      const std::string pre = "model.layers." + std::to_string(l) + ".";
      const std::vector<double> a = base_.rmsnorm(h, base_.W(pre + "input_layernorm.weight"), N, D);
      std::vector<double> q = base_.linear(a, pre + "self_attn.q_proj", N, D, Dq, s_.attention_bias);
      std::vector<double> k = base_.linear(a, pre + "self_attn.k_proj", N, D, Dkv, s_.attention_bias);
      std::vector<double> v = base_.linear(a, pre + "self_attn.v_proj", N, D, Dkv, s_.attention_bias);
      if (s_.qk_norm) {
        q = base_.rmsnorm(q, base_.W(pre + "self_attn.q_norm.weight"), N * Hq, hd);
        k = base_.rmsnorm(k, base_.W(pre + "self_attn.k_norm.weight"), N * Hkv, hd);
      }
      base_.rope(q, pos.data(), N, Hq, freq);
      base_.rope(k, pos.data(), N, Hkv, freq);
      // Keys/values of the layer: the cache (prefix) first, then the sequence's own.
      std::vector<double> K(static_cast<size_t>(P + N) * Dkv), Vv(K.size());
      const size_t width = static_cast<size_t>(2) * L * Dkv;
      for (int j = 0; j < P; ++j)
        for (int c = 0; c < Dkv; ++c) {
          K[j * Dkv + c] = ad.prefix_table[j * width + (2 * l) * Dkv + c];
          Vv[j * Dkv + c] = ad.prefix_table[j * width + (2 * l + 1) * Dkv + c];
        }
      std::copy(k.begin(), k.end(), K.begin() + static_cast<size_t>(P) * Dkv);
      std::copy(v.begin(), v.end(), Vv.begin() + static_cast<size_t>(P) * Dkv);
      std::vector<double> attn(static_cast<size_t>(N) * Dq, 0.0);
      for (int t = 0; t < N; ++t)
        for (int hq = 0; hq < Hq; ++hq) {
          const int hk = hq / (Hq / Hkv);
          std::vector<double> sc(P + t + 1);  // causal over the cache and the sequence
          double mx = -1e300, sum = 0;
          for (int j = 0; j < P + t + 1; ++j) {
            double dot = 0;
            for (int i = 0; i < hd; ++i) dot += q[t * Dq + hq * hd + i] * K[j * Dkv + hk * hd + i];
            sc[j] = dot * scale;
            mx = std::max(mx, sc[j]);
          }
          for (double& x : sc) sum += (x = std::exp(x - mx));
          for (int j = 0; j < P + t + 1; ++j)
            for (int i = 0; i < hd; ++i) attn[t * Dq + hq * hd + i] += sc[j] / sum * Vv[j * Dkv + hk * hd + i];
        }
      const std::vector<double> o = base_.linear(attn, pre + "self_attn.o_proj", N, Dq, D, o_bias);
      for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
      const std::vector<double> m = base_.rmsnorm(h, base_.W(pre + "post_attention_layernorm.weight"), N, D);
      std::vector<double> g = base_.linear(m, pre + "mlp.gate_proj", N, D, F, false);
      const std::vector<double> u = base_.linear(m, pre + "mlp.up_proj", N, D, F, false);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const std::vector<double> dn = base_.linear(g, pre + "mlp.down_proj", N, F, D, false);
      for (size_t i = 0; i < h.size(); ++i) h[i] += dn[i];
    }
    const std::vector<double> hf = base_.rmsnorm(h, base_.W("model.norm.weight"), N, D);
    const auto& H = s_.tie_word_embeddings ? E : base_.W("lm_head.weight");
    std::vector<double> out(static_cast<size_t>(N) * V);
    for (int t = 0; t < N; ++t)
      for (int c = 0; c < V; ++c) {
        double acc = 0;
        for (int i = 0; i < D; ++i) acc += hf[t * D + i] * H[static_cast<size_t>(c) * D + i];
        out[static_cast<size_t>(t) * V + c] = acc;
      }
    return out;
  }

  // Sum of the shifted cross-entropy of one sequence (PEFT prepends nvt x
  // -100 to the labels for prompt tuning); *tokens gets the counted positions.
  double loss_sum(const PromptAdapter& ad, const std::vector<int>& ids, const std::vector<int>& seq_labels,
                  int64_t* tokens) const {
    const std::vector<double> lg = logits(ad, ids);
    const int lead = ad.prompt.empty() ? 0 : ad.nvt, N = lead + static_cast<int>(ids.size()), V = s_.vocab_size;
    std::vector<int> labels(N, -100);
    for (size_t i = 0; i < ids.size(); ++i) labels[lead + i] = seq_labels[i];
    double sum = 0;
    for (int t = 0; t + 1 < N; ++t) {
      if (labels[t + 1] == -100) continue;
      sum += Llama::token_nll(&lg[static_cast<size_t>(t) * V], V, labels[t + 1]);
      ++*tokens;
    }
    return sum;
  }

 private:
  ps::ModelSpec s_;
  Llama base_;  // its weights and building blocks (reference_llama.h)
};

// The sequences of an engine batch: each run of equal segment ids >= 0 in a
// row (a packed row holds several; padding, segment -1, belongs to none).
struct Sequence {
  std::vector<int> ids, labels;
};
inline std::vector<Sequence> sequences(const ps::Batch& b) {
  std::vector<Sequence> out;
  for (int r = 0; r < b.batch_size; ++r) {
    int prev = -1;
    for (int t = 0; t < b.seq_len; ++t) {
      const size_t i = static_cast<size_t>(r) * b.seq_len + t;
      const int seg = b.segments[i];
      if (seg < 0) {
        prev = -1;
        continue;
      }
      if (seg != prev) out.emplace_back();
      out.back().ids.push_back(b.input_ids[i]);
      out.back().labels.push_back(b.labels[i]);
      prev = seg;
    }
  }
  return out;
}

// The loss sum PEFT computes over a batch, sequence by sequence.
inline double loss_sum(const PromptLlama& m, const PromptAdapter& ad, const ps::Batch& b, int64_t* tokens) {
  double sum = 0;
  *tokens = 0;
  for (const Sequence& s : sequences(b)) sum += m.loss_sum(ad, s.ids, s.labels, tokens);
  return sum;
}

}  // namespace ref
