// An independent float64 transcription of Hugging Face's LlamaForCausalLM
// forward (with the Qwen2 biases, Qwen3 q/k norms, llama3/linear RoPE scaling
// and PEFT LoRA branches), written directly from the transformers / PEFT
// source semantics with plain loops. It shares no code with the engine: the
// model tests compare the engine's fp32 loss and logits against it.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "engine.h"
#include "tiny_model.h"

namespace ref {

struct LoraBranch {
  std::vector<float> A, B;  // [r, in], [out, r]
  int r = 0;
  double scale = 0;
  // DoRA (PEFT DoraLinearLayer) when not empty: [out]; the linear is then
  // (m / ||W + scale B A||_row) (W + scale B A) x + bias, the matrix formed here.
  std::vector<float> magnitude;
};

class Llama {
 public:
  Llama(const ps::ModelSpec& spec, const tiny::Weights& w) : s_(spec), w_(w) {
    if (s_.head_dim == 0) s_.head_dim = s_.hidden_size / s_.num_heads;
  }

  // Keyed by the module path, e.g. "model.layers.0.self_attn.q_proj".
  std::map<std::string, LoraBranch> lora;
  // NEFTune: added to the input embeddings [rows, D] when not empty.
  std::vector<double> embed_noise;

  // HF rotary inv_freq, then the rope_scaling rule of _compute_llama3_parameters.
  std::vector<double> inv_freq() const {
    const int hd = s_.head_dim;
    std::vector<double> f(hd / 2);
    for (int i = 0; i < hd / 2; ++i) f[i] = 1.0 / std::pow(static_cast<double>(s_.rope_theta), 2.0 * i / hd);
    if (s_.rope_scaling == ps::RopeScaling::Linear) {
      for (auto& x : f) x /= s_.rope_factor;
    } else if (s_.rope_scaling == ps::RopeScaling::Llama3) {
      const double old_len = s_.rope_original_max_position, lo = s_.rope_low_freq_factor,
                   hi = s_.rope_high_freq_factor, factor = s_.rope_factor;
      const double low_wavelen = old_len / lo, high_wavelen = old_len / hi;
      for (auto& x : f) {
        const double wavelen = 2 * 3.14159265358979323846 / x;
        double scaled = wavelen > low_wavelen ? x / factor : x;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        if (medium) {
          const double smooth = (old_len / wavelen - lo) / (hi - lo);
          scaled = (1 - smooth) * scaled / factor + smooth * scaled;
        }
        x = scaled;
      }
    }
    return f;
  }

  // Logits [rows, V] of every position.
  std::vector<double> logits(const ps::Batch& b) const {
    const int B = b.batch_size, T = b.seq_len, R = B * T;
    const int D = s_.hidden_size, F = s_.intermediate_size, Hq = s_.num_heads, Hkv = s_.num_kv_heads,
              hd = s_.head_dim, V = s_.vocab_size;
    const int Dq = Hq * hd, Dkv = Hkv * hd;
    const bool o_bias = s_.attention_bias && s_.architecture != "Qwen2ForCausalLM";
    std::vector<double> h(static_cast<size_t>(R) * D);
    const auto& E = W("model.embed_tokens.weight");
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < D; ++i) h[r * D + i] = E[static_cast<size_t>(b.input_ids[r]) * D + i];
    if (!embed_noise.empty())
      for (size_t i = 0; i < h.size(); ++i) h[i] += embed_noise[i];
    const std::vector<double> freq = inv_freq();

    for (int l = 0; l < s_.num_layers; ++l) {
      const std::string pre = "model.layers." + std::to_string(l) + ".";
      std::vector<double> a = rmsnorm(h, W(pre + "input_layernorm.weight"), R, D);
      std::vector<double> q = linear(a, pre + "self_attn.q_proj", R, D, Dq, s_.attention_bias);
      std::vector<double> k = linear(a, pre + "self_attn.k_proj", R, D, Dkv, s_.attention_bias);
      std::vector<double> v = linear(a, pre + "self_attn.v_proj", R, D, Dkv, s_.attention_bias);
      if (s_.qk_norm) {
        q = rmsnorm(q, W(pre + "self_attn.q_norm.weight"), R * Hq, hd);
        k = rmsnorm(k, W(pre + "self_attn.k_norm.weight"), R * Hkv, hd);
      }
      rope(q, b, Hq, freq);
      rope(k, b, Hkv, freq);
      std::vector<double> attn(static_cast<size_t>(R) * Dq, 0.0);
      const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
      for (int bb = 0; bb < B; ++bb)
        for (int t = 0; t < T; ++t) {
          const int qi = bb * T + t;
          if (b.segments[qi] < 0) continue;  // padding: output 0
          for (int hq = 0; hq < Hq; ++hq) {
            const int hk = hq / (Hq / Hkv);
            std::vector<double> sc;
            std::vector<int> keys;
            for (int j = 0; j <= t; ++j) {
              const int ki = bb * T + j;
              if (b.segments[ki] != b.segments[qi]) continue;
              double dot = 0;
              for (int i = 0; i < hd; ++i) dot += q[qi * Dq + hq * hd + i] * k[ki * Dkv + hk * hd + i];
              sc.push_back(dot * scale);
              keys.push_back(ki);
            }
            double mx = -1e300, sum = 0;
            for (double x : sc) mx = std::max(mx, x);
            for (double& x : sc) sum += (x = std::exp(x - mx));
            for (size_t j = 0; j < keys.size(); ++j)
              for (int i = 0; i < hd; ++i)
                attn[qi * Dq + hq * hd + i] += sc[j] / sum * v[keys[j] * Dkv + hk * hd + i];
          }
        }
      std::vector<double> o = linear(attn, pre + "self_attn.o_proj", R, Dq, D, o_bias);
      for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
      std::vector<double> m = rmsnorm(h, W(pre + "post_attention_layernorm.weight"), R, D);
      std::vector<double> g = linear(m, pre + "mlp.gate_proj", R, D, F, false);
      std::vector<double> u = linear(m, pre + "mlp.up_proj", R, D, F, false);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      std::vector<double> dn = linear(g, pre + "mlp.down_proj", R, F, D, false);
      for (size_t i = 0; i < h.size(); ++i) h[i] += dn[i];
    }
    std::vector<double> hf = rmsnorm(h, W("model.norm.weight"), R, D);
    const auto& H = s_.tie_word_embeddings ? E : W("lm_head.weight");
    std::vector<double> out(static_cast<size_t>(R) * V);
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < V; ++c) {
        double acc = 0;
        for (int i = 0; i < D; ++i) acc += hf[r * D + i] * H[static_cast<size_t>(c) * D + i];
        out[static_cast<size_t>(r) * V + c] = acc;
      }
    return out;
  }

  // Sum of the shifted cross-entropy over counted positions.
  double loss_sum(const ps::Batch& b, int64_t* tokens = nullptr) const {
    const std::vector<double> lg = logits(b);
    const int V = s_.vocab_size;
    double sum = 0;
    int64_t n = 0;
    for (int r = 0; r < b.batch_size; ++r)
      for (int t = 0; t + 1 < b.seq_len; ++t) {
        const int i = r * b.seq_len + t;
        const int label = b.labels[i + 1];
        if (label == -100 || b.segments[i] < 0 || b.segments[i + 1] != b.segments[i]) continue;
        sum += token_nll(&lg[static_cast<size_t>(i) * V], V, label);
        ++n;
      }
    if (tokens) *tokens = n;
    return sum;
  }

  // The building blocks, shared with the prompt-learning reference
  // (reference_prompt_learning.h), which runs them on its own sequences.

  // -log softmax(row)[label], with the running max.
  static double token_nll(const double* row, int V, int label) {
    double mx = -1e300, z = 0;
    for (int c = 0; c < V; ++c) mx = std::max(mx, row[c]);
    for (int c = 0; c < V; ++c) z += std::exp(row[c] - mx);
    return mx + std::log(z) - row[label];
  }

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
    auto it = lora.find(module);
    if (it != lora.end() && !it->second.magnitude.empty()) return dora_linear(x, module, it->second, rows, in, out, bias);
    if (it != lora.end()) {  // y += scale * B (A x)
      const LoraBranch& L = it->second;
      for (int r = 0; r < rows; ++r) {
        std::vector<double> ax(L.r, 0.0);
        for (int j = 0; j < L.r; ++j)
          for (int i = 0; i < in; ++i) ax[j] += L.A[static_cast<size_t>(j) * in + i] * x[r * in + i];
        for (int o = 0; o < out; ++o) {
          double acc = 0;
          for (int j = 0; j < L.r; ++j) acc += L.B[static_cast<size_t>(o) * L.r + j] * ax[j];
          y[r * out + o] += L.scale * acc;
        }
      }
    }
    return y;
  }

  // DoRA: W' = W + scale B A formed in full, each row scaled to magnitude / ||W'_row||.
  std::vector<double> dora_linear(const std::vector<double>& x, const std::string& module, const LoraBranch& L,
                                  int rows, int in, int out, bool bias) const {
    const auto& Wt = W(module + ".weight");
    std::vector<double> merged(static_cast<size_t>(out) * in);
    for (int o = 0; o < out; ++o) {
      double sq = 0;
      for (int i = 0; i < in; ++i) {
        double ba = 0;
        for (int j = 0; j < L.r; ++j) ba += L.B[static_cast<size_t>(o) * L.r + j] * L.A[static_cast<size_t>(j) * in + i];
        const double w = Wt[static_cast<size_t>(o) * in + i] + L.scale * ba;
        merged[static_cast<size_t>(o) * in + i] = w;
        sq += w * w;
      }
      const double f = L.magnitude[o] / std::sqrt(sq);
      for (int i = 0; i < in; ++i) merged[static_cast<size_t>(o) * in + i] *= f;
    }
    std::vector<double> y(static_cast<size_t>(rows) * out);
    for (int r = 0; r < rows; ++r)
      for (int o = 0; o < out; ++o) {
        double acc = bias ? W(module + ".bias")[o] : 0.0;
        for (int i = 0; i < in; ++i) acc += x[r * in + i] * merged[static_cast<size_t>(o) * in + i];
        y[r * out + o] = acc;
      }
    return y;
  }

  // rotate_half: out[i] = x[i] cos - x[i + hd/2] sin; out[i + hd/2] = x[i + hd/2] cos + x[i] sin.
  void rope(std::vector<double>& x, const ps::Batch& b, int heads, const std::vector<double>& freq) const {
    rope(x, b.positions.data(), b.batch_size * b.seq_len, heads, freq);
  }
  void rope(std::vector<double>& x, const int32_t* pos, int rows, int heads, const std::vector<double>& freq) const {
    const int hd = s_.head_dim, half = hd / 2;
    for (int r = 0; r < rows; ++r)
      for (int h = 0; h < heads; ++h) {
        double* p = &x[(static_cast<size_t>(r) * heads + h) * hd];
        for (int i = 0; i < half; ++i) {
          const double ang = pos[r] * freq[i], c = std::cos(ang), s = std::sin(ang);
          const double lo = p[i], hi = p[i + half];
          p[i] = lo * c - hi * s;
          p[i + half] = hi * c + lo * s;
        }
      }
  }


 private:
  ps::ModelSpec s_;
  const tiny::Weights& w_;
};

// Copies an engine's adapters into a reference: every module with a LoRA A,
// with its DoRA magnitude when the engine has one.
inline void mirror_lora(ps::Engine& e, Llama& r, double scale) {
  for (const auto& p : e.parameters()) {
    const auto at = p.name.find(".lora_A.weight");
    if (at == std::string::npos) continue;
    const std::string module = p.name.substr(0, at);
    LoraBranch br;
    br.A = e.get_tensor(p.name);
    br.B = e.get_tensor(module + ".lora_B.weight");
    br.r = static_cast<int>(p.shape[0]);
    br.scale = scale;
    for (const auto& q : e.parameters())
      if (q.name == module + ".lora_magnitude_vector") br.magnitude = e.get_tensor(q.name);
    r.lora[module] = br;
  }
}

}  // namespace ref
