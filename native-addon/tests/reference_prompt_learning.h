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
};

class PromptLlama {
 public:
  PromptLlama(const ps::ModelSpec& spec, const tiny::Weights& w) : s_(spec), w_(w), base_(spec, w) {
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
    const auto& E = W("model.embed_tokens.weight");
    for (int t = 0; t < N; ++t)
      for (int i = 0; i < D; ++i)
        h[t * D + i] = t < lead ? ad.prompt[t * D + i] : E[static_cast<size_t>(ids[t - lead]) * D + i];
    std::vector<int> pos(N);
    for (int t = 0; t < N; ++t) pos[t] = P + t;
    const std::vector<double> freq = base_.inv_freq();
    const bool o_bias = s_.attention_bias && s_.architecture != "Qwen2ForCausalLM";
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    for (int l = 0; l < L; ++l) {
      const std::string pre = "model.layers." + std::to_string(l) + ".";
      const std::vector<double> a = rmsnorm(h, W(pre + "input_layernorm.weight"), N, D);
      std::vector<double> q = linear(a, pre + "self_attn.q_proj", N, D, Dq, s_.attention_bias);
      std::vector<double> k = linear(a, pre + "self_attn.k_proj", N, D, Dkv, s_.attention_bias);
      std::vector<double> v = linear(a, pre + "self_attn.v_proj", N, D, Dkv, s_.attention_bias);
      if (s_.qk_norm) {
        q = rmsnorm(q, W(pre + "self_attn.q_norm.weight"), N * Hq, hd);
        k = rmsnorm(k, W(pre + "self_attn.k_norm.weight"), N * Hkv, hd);
      }
      rope(q, pos, Hq, freq);
      rope(k, pos, Hkv, freq);
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
      const std::vector<double> o = linear(attn, pre + "self_attn.o_proj", N, Dq, D, o_bias);
      for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
      const std::vector<double> m = rmsnorm(h, W(pre + "post_attention_layernorm.weight"), N, D);
      std::vector<double> g = linear(m, pre + "mlp.gate_proj", N, D, F, false);
      const std::vector<double> u = linear(m, pre + "mlp.up_proj", N, D, F, false);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const std::vector<double> dn = linear(g, pre + "mlp.down_proj", N, F, D, false);
      for (size_t i = 0; i < h.size(); ++i) h[i] += dn[i];
    }
    const std::vector<double> hf = rmsnorm(h, W("model.norm.weight"), N, D);
    const auto& H = s_.tie_word_embeddings ? E : W("lm_head.weight");
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
      const double* row = &lg[static_cast<size_t>(t) * V];
      double mx = -1e300, z = 0;
      for (int c = 0; c < V; ++c) mx = std::max(mx, row[c]);
      for (int c = 0; c < V; ++c) z += std::exp(row[c] - mx);
      sum += mx + std::log(z) - row[labels[t + 1]];
      ++*tokens;
    }
    return sum;
  }

 private:
  const std::vector<float>& W(const std::string& name) const { return w_.at(name); }

  std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<float>& w, int rows, int D) const {
    std::vector<double> y(x.size());
    for (int r = 0; r < rows; ++r) {
      double ms = 0;
      for (int i = 0; i < D; ++i) ms += x[r * D + i] * x[r * D + i];
      const double inv = 1.0 / std::sqrt(ms / D + s_.rms_norm_eps);
      for (int i = 0; i < D; ++i) y[r * D + i] = w[i] * (x[r * D + i] * inv);
    }
    return y;
  }

  std::vector<double> linear(const std::vector<double>& x, const std::string& module, int rows, int in, int out,
                             bool bias) const {
    const auto& Wt = W(module + ".weight");
    std::vector<double> y(static_cast<size_t>(rows) * out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        double acc = bias ? W(module + ".bias")[o] : 0.0;
        for (int i = 0; i < in; ++i) acc += x[r * in + i] * Wt[static_cast<size_t>(o) * in + i];
        y[r * out + o] = acc;
      }
    return y;
  }

  void rope(std::vector<double>& x, const std::vector<int>& pos, int heads, const std::vector<double>& freq) const {
    const int hd = s_.head_dim, half = hd / 2;
    for (size_t r = 0; r < pos.size(); ++r)
      for (int h = 0; h < heads; ++h) {
        double* p = &x[(r * heads + h) * hd];
        for (int i = 0; i < half; ++i) {
          const double ang = pos[r] * freq[i], c = std::cos(ang), s = std::sin(ang);
          const double lo = p[i], hi = p[i + half];
          p[i] = lo * c - hi * s;
          p[i + half] = hi * c + lo * s;
        }
      }
  }

  ps::ModelSpec s_;
  const tiny::Weights& w_;
  Llama base_;
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
