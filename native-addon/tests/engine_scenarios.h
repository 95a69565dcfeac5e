// Whole training runs of the engine on small random checkpoints, shared by
// the tests that compare one backend with another: test_device_plumbing (a
// simulated device, bit for bit) and cuda/test_cuda_engine (a GPU, within
// tolerances). Each Scenario is a model, a checkpoint file laid out to hit
// every weight-loading path (aligned / misaligned F32, BF16, F16; 16-bit
// tables and 4-bit linears under QLoRA) and a training method; run() does two
// optimizer steps, an evaluation, getTensor of every tensor, the optimizer
// state and generation, and returns every number and array it saw.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "model/half.h"
#include "rng.h"
#include "tiny_model.h"

namespace scenarios {

using namespace tiny;
namespace fs = std::filesystem;

constexpr int kThreads = 2;

struct Layout {
  ps::DType dtype = ps::DType::F32;
  bool misalign = false;  // start the tensor's bytes at an odd offset
};

inline uint16_t bf16_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}

// IEEE half by truncation; magnitudes below half's normal range become 0.
inline uint16_t f16_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = static_cast<int>((b >> 23) & 0xFF) - 127 + 15;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7BFFu);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | ((b >> 13) & 0x3FFu));
}

// One safetensors-like file (a stand-in header, then the tensors) with each
// tensor stored as `layout` says.
inline std::vector<ps::WeightRef> write_checkpoint(const fs::path& path, const ps::ModelSpec& s, uint64_t seed,
                                            const std::function<Layout(const std::string&, int)>& layout) {
  Weights w = random_weights(s, seed);
  std::vector<uint8_t> bytes(8, 0xAB);
  std::vector<ps::WeightRef> refs;
  int i = 0;
  for (const auto& info : ps::expected_weights(s)) {
    const std::vector<float>& v = w[info.name];
    const Layout l = layout(info.name, i++);
    while (bytes.size() % 8) bytes.push_back(0);
    if (l.misalign) bytes.push_back(0);
    ps::WeightRef r;
    r.name = info.name;
    r.file = path.string();
    r.shape = info.shape;
    r.dtype = l.dtype;
    r.offset = bytes.size();
    for (float x : v) {
      if (l.dtype == ps::DType::F32) {
        uint8_t b[4];
        std::memcpy(b, &x, 4);
        bytes.insert(bytes.end(), b, b + 4);
      } else {
        const uint16_t h = l.dtype == ps::DType::BF16 ? bf16_bits(x) : f16_bits(x);
        bytes.push_back(static_cast<uint8_t>(h & 0xFF));
        bytes.push_back(static_cast<uint8_t>(h >> 8));
      }
    }
    refs.push_back(r);
  }
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return refs;
}

// Everything a run produced, to be compared bit for bit.
struct Outcome {
  std::vector<double> numbers;                       // losses, token counts, gradient norms
  std::map<std::string, std::vector<float>> arrays;  // tensors, gradients, logits, optimizer state
};

struct Scenario {
  std::string name;
  ps::ModelSpec spec;
  ps::EngineOptions options;
  std::vector<ps::WeightRef> refs;
  std::function<void(ps::Engine&)> setup;  // the training method
  ps::OptimizerStep step;
  bool decode = true;
  bool packed = true;  // train on rows with padding and two packed sequences (prompt tuning refuses packing)
};

inline Outcome run(const Scenario& sc, std::unique_ptr<ps::Backend> backend) {
  std::unique_ptr<ps::Engine> e = backend ? std::make_unique<ps::Engine>(sc.spec, sc.options, std::move(backend))
                                          : std::make_unique<ps::Engine>(sc.spec, sc.options);
  ps::Engine& engine = *e;
  Outcome out;
  engine.load_weights(sc.refs);
  sc.setup(engine);
  const int V = sc.spec.vocab_size;
  for (int s = 0; s < 2; ++s) {
    const ps::Batch b = sc.packed ? ragged_batch(8, V, 100 + s) : random_batch(2, 8, V, 100 + s);
    const ps::LossResult l = engine.forward_backward(b, 1.0f / static_cast<float>(counted_tokens(b)));
    out.numbers.push_back(l.loss_sum);
    out.numbers.push_back(static_cast<double>(l.tokens));
    for (const auto& p : engine.parameters())
      if (p.trainable) out.arrays["grad " + std::to_string(s) + " " + p.name] = engine.get_gradient(p.name);
    out.numbers.push_back(engine.optimizer_step(sc.step));
  }
  const ps::LossResult ev = engine.evaluate(random_batch(2, 6, V, 7));
  out.numbers.push_back(ev.loss_sum);
  for (const auto& p : engine.parameters()) out.arrays["value " + p.name] = engine.get_tensor(p.name);
  const ps::OptimizerState st = engine.get_optimizer_state();
  out.numbers.push_back(static_cast<double>(st.step));
  for (const auto& t : st.tensors) {
    out.arrays["m " + t.name] = t.m;
    out.arrays["v " + t.name] = t.v;
  }
  if (sc.decode) {
    engine.reset_cache(12);
    const int32_t prompt[5] = {3, 1, 4, 1, 5};
    out.arrays["logits prompt"] = engine.decode(prompt, 5);
    const int32_t next = 9;
    out.arrays["logits next"] = engine.decode(&next, 1);
  }
  return out;
}

inline ps::OptimizerStep adamw(float clip) {
  ps::OptimizerStep o;
  o.lr = 1e-2f;
  o.weight_decay = 0.01f;
  o.max_grad_norm = clip;
  return o;
}

inline bool is_block_linear(const std::string& n) { return n.find("_proj.weight") != std::string::npos; }

inline void add_lora(std::vector<Scenario>& out, const fs::path& dir) {
  Scenario sc;
  sc.name = "lora";
  sc.spec = spec(Variant::Llama);
  sc.options.threads = kThreads;
  sc.options.seed = 5;
  // Tensor i: F32 aligned (mapped in place on the CPU), F32 misaligned, BF16, F16 (widened).
  sc.refs = write_checkpoint(dir / "lora.safetensors", sc.spec, 11, [](const std::string&, int i) {
    const ps::DType kinds[4] = {ps::DType::F32, ps::DType::F32, ps::DType::BF16, ps::DType::F16};
    return Layout{kinds[i % 4], i % 4 == 1};
  });
  sc.setup = [](ps::Engine& e) {
    e.setup_lora(all_targets_lora(4, 8.0f, 0.1f, 3));
    randomize_lora_b(e, 0.2, 4);
  };
  sc.step = adamw(0.5f);  // clipping active: the global norm goes through sum_squares
  out.push_back(sc);
}

inline void add_qlora(std::vector<Scenario>& out, const fs::path& dir) {
  for (bool dq : {true, false}) {
    Scenario sc;
    sc.name = dq ? "qlora (double quantization, checkpointing)" : "qlora (fp32 absmax)";
    sc.spec = spec(Variant::Llama);  // untied: a 16-bit embedding AND a 16-bit lm_head
    sc.options.threads = kThreads;
    sc.options.gradient_checkpointing = dq;
    sc.options.quantization.type = ps::QuantizationOptions::Type::Nf4;
    sc.options.quantization.blocksize = dq ? 64 : 32;
    sc.options.quantization.double_quant = dq;
    sc.refs = write_checkpoint(dir / (dq ? "qlora_dq.safetensors" : "qlora.safetensors"), sc.spec, 12,
                               [](const std::string& n, int i) {
                                 if (n == "model.embed_tokens.weight") return Layout{ps::DType::BF16, true};
                                 if (n == "lm_head.weight") return Layout{ps::DType::F16, false};
                                 if (is_block_linear(n)) return Layout{i % 2 ? ps::DType::BF16 : ps::DType::F32, false};
                                 return Layout{ps::DType::F32, false};
                               });
    sc.setup = [](ps::Engine& e) {
      e.setup_lora(all_targets_lora(4, 8.0f, 0.0f, 6));
      randomize_lora_b(e, 0.2, 7);
    };
    sc.step = adamw(0.0f);
    out.push_back(sc);
  }
}

// DoRA with dropout and NEFTune on the mixed-dtype checkpoint (fp32, 16-bit
// bases), and on a 4-bit base with checkpointing: the magnitudes, their norms
// refreshed after each optimizer step, the extra products of the dropout
// path, the noise on the embeddings.
inline void add_dora(std::vector<Scenario>& out, const fs::path& dir) {
  for (bool four_bit : {false, true}) {
    Scenario sc;
    sc.name = four_bit ? "dora (4-bit base, checkpointing)" : "dora (dropout, NEFTune)";
    sc.spec = spec(four_bit ? Variant::Llama : Variant::Qwen2);
    sc.options.threads = kThreads;
    sc.options.seed = 9;
    if (!four_bit) sc.options.neftune_alpha = 5.0f;  // the noise on the embeddings, on every backend
    if (four_bit) {
      sc.options.gradient_checkpointing = true;
      sc.options.quantization.type = ps::QuantizationOptions::Type::Nf4;
    }
    sc.refs = write_checkpoint(dir / (four_bit ? "dora_nf4.safetensors" : "dora.safetensors"), sc.spec, 13,
                               [](const std::string&, int i) {
                                 const ps::DType kinds[3] = {ps::DType::F32, ps::DType::BF16, ps::DType::F16};
                                 return Layout{kinds[i % 3], false};
                               });
    sc.setup = [four_bit](ps::Engine& e) {
      ps::LoraOptions o = all_targets_lora(4, 8.0f, four_bit ? 0.0f : 0.1f, 3);
      o.dora = true;
      e.setup_lora(o);
      randomize_lora_b(e, 0.2, 4);
    };
    sc.step = adamw(0.5f);
    out.push_back(sc);
  }
}

inline void add_prefix(std::vector<Scenario>& out, const fs::path& dir) {
  Scenario sc;
  sc.name = "prefix tuning (projection, checkpointing)";
  sc.spec = spec(Variant::Qwen2);  // q/k/v biases, tied embeddings
  sc.options.threads = kThreads;
  sc.options.gradient_checkpointing = true;
  sc.refs = write_checkpoint(dir / "prefix.safetensors", sc.spec, 13,
                             [](const std::string&, int i) { return Layout{i % 3 ? ps::DType::F32 : ps::DType::BF16, false}; });
  sc.setup = [](ps::Engine& e) {
    ps::PrefixTuningOptions o;
    o.num_virtual_tokens = 3;
    o.projection = true;
    o.encoder_hidden_size = 10;
    o.seed = 8;
    e.setup_prefix_tuning(o);
  };
  sc.step = adamw(1.0f);
  out.push_back(sc);
}

inline void add_prompt(std::vector<Scenario>& out, const fs::path& dir) {
  Scenario sc;
  sc.name = "prompt tuning";
  sc.spec = spec(Variant::Llama);
  sc.options.threads = kThreads;
  sc.packed = false;
  sc.refs = write_checkpoint(dir / "prompt.safetensors", sc.spec, 15,
                             [](const std::string&, int) { return Layout{ps::DType::F32, false}; });
  sc.setup = [hidden = sc.spec.hidden_size](ps::Engine& e) {
    ps::PromptTuningOptions o;
    o.num_virtual_tokens = 3;
    ps::Rng rng(9);
    o.init.resize(static_cast<size_t>(o.num_virtual_tokens) * hidden);
    for (auto& x : o.init) x = static_cast<float>(rng.normal());
    e.setup_prompt_tuning(o);
  };
  sc.step = adamw(0.0f);
  out.push_back(sc);
}

inline void add_full(std::vector<Scenario>& out, const fs::path& dir) {
  Scenario sc;
  sc.name = "full fine-tuning (sgd)";
  sc.spec = spec(Variant::Tied);
  sc.options.threads = kThreads;
  sc.refs = write_checkpoint(dir / "full.safetensors", sc.spec, 14,
                             [](const std::string&, int i) { return Layout{i % 2 ? ps::DType::F32 : ps::DType::F16, false}; });
  sc.setup = [](ps::Engine& e) { e.setup_full(); };
  sc.step.kind = ps::OptimizerStep::Kind::Sgd;
  sc.step.lr = 0.05f;
  sc.step.weight_decay = 0.01f;
  out.push_back(sc);
}


// Every scenario, its checkpoint files written under dir.
inline std::vector<Scenario> all(const fs::path& dir) {
  std::vector<Scenario> out;
  add_lora(out, dir);
  add_qlora(out, dir);
  add_dora(out, dir);
  add_prefix(out, dir);
  add_prompt(out, dir);
  add_full(out, dir);
  return out;
}

}  // namespace scenarios
