// QLoRA in the engine: the seven block linears held in 4-bit NF4, LoRA on top.
//  - the 4-bit forward equals the float64 reference model whose linears are
//    the dequantized NF4 values (and those values are exactly the project
//    quantizer's, bitsandbytes' algorithm), with partial blocks and biases;
//  - decoding with the 4-bit GEMV gives the logits of the same fp32 model;
//  - finite-difference gradients through 4-bit layers to the LoRA matrices,
//    including a layer whose whole gradient arrives through the input
//    gradient of 4-bit weights (dX = dY·W4);
//  - QLoRA training lowers the loss; full fine-tuning is refused;
//  - resident bytes of the 4-bit weights = 4.127 bits per parameter (plus
//    what partial blocks add), equal to the memory estimate;
//  - loading from files: quantized from BF16 at load, or bitsandbytes'
//    prequantized tensors taken as they are.
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "check.h"
#include "error.h"
#include "fd_check.h"
#include "model/activations.h"
#include "model/half.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#include "reference_llama.h"
#include "tiny_model.h"

using namespace tiny;
namespace fs = std::filesystem;

namespace {

bool is_linear(const std::string& name) {
  for (const char* m : {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "gate_proj.weight",
                        "up_proj.weight", "down_proj.weight"})
    if (name.size() > std::strlen(m) && name.compare(name.size() - std::strlen(m), std::strlen(m), m) == 0)
      return true;
  return false;
}

ps::EngineOptions nf4_options(int blocksize = 64, bool dq = true, int threads = 2) {
  ps::EngineOptions o;
  o.threads = threads;
  o.quantization.type = ps::QuantizationOptions::Type::Nf4;
  o.quantization.blocksize = blocksize;
  o.quantization.double_quant = dq;
  return o;
}

std::unique_ptr<ps::Engine> qengine(const ps::ModelSpec& s, const Weights& w, int blocksize = 64, bool dq = true) {
  auto e = std::make_unique<ps::Engine>(s, nf4_options(blocksize, dq));
  set_all(*e, w);
  return e;
}

// The weights the 4-bit engine computes with: linears dequantized, the rest as given.
Weights dequantized(ps::Engine& e, const Weights& w) {
  Weights out = w;
  for (auto& kv : out)
    if (is_linear(kv.first)) kv.second = e.get_tensor(kv.first);
  return out;
}

void test_forward_matches_reference(Variant v, int blocksize, bool dq) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 11);
  auto e = qengine(s, w, blocksize, dq);
  const Weights wd = dequantized(*e, w);
  // The engine's 4-bit values are exactly the project quantizer's (bitsandbytes' algorithm).
  for (const auto& info : ps::expected_weights(s)) {
    if (!is_linear(info.name)) continue;
    const auto& src = w.at(info.name);
    const ps::Nf4Quantized q = ps::nf4_quantize(src.data(), info.shape[0], info.shape[1], blocksize, dq);
    std::vector<float> want(src.size());
    ps::nf4_dequantize_reference(q.view(), want.data());
    CHECK(std::memcmp(want.data(), wd.at(info.name).data(), want.size() * sizeof(float)) == 0);
    double worst = 0;  // NF4 has 16 levels: the rounding error is large but bounded by half the widest gap
    for (size_t i = 0; i < src.size(); ++i) worst = std::max(worst, std::fabs(double(src[i]) - wd.at(info.name)[i]));
    CHECK(worst > 1e-3 && worst < 0.2 * 4 * 0.3 * 1.2);  // absmax of N(0, 0.3^2) blocks stays < ~1.2
  }
  for (const ps::Batch& b : {random_batch(2, 9, s.vocab_size, 3), ragged_batch(10, s.vocab_size, 4)}) {
    ref::Llama r(s, wd);
    int64_t tokens = 0;
    const double want = r.loss_sum(b, &tokens);
    const ps::LossResult got = e->evaluate(b);
    CHECK(got.tokens == tokens);
    CHECK_CLOSE(got.loss_sum, want, 1e-6, 0);
    // The fp32 model's loss differs: quantization really happened.
    CHECK(std::fabs(ref::Llama(s, w).loss_sum(b) - want) > 1e-4);

    auto el = qengine(s, w, blocksize, dq);
    el->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    randomize_lora_b(*el, 0.2, 6);
    ref::Llama rl(s, wd);
    ref::mirror_lora(*el, rl, 2.0);
    const double want_l = rl.loss_sum(b);
    CHECK_CLOSE(el->evaluate(b).loss_sum, want_l, 1e-6, 0);
    CHECK_CLOSE(el->forward_backward(b, 0.0f).loss_sum, want_l, 1e-6, 0);
  }
}

// Generation runs the 4-bit GEMV (batch 1): its logits are the fp32 model's on the dequantized weights.
void test_decode_matches() {
  const ps::ModelSpec s = spec(Variant::Qwen3);
  const Weights w = random_weights(s, 13);
  auto e = qengine(s, w);
  e->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
  randomize_lora_b(*e, 0.2, 6);
  ps::EngineOptions fo;
  fo.threads = 2;
  ps::Engine f(s, fo);
  set_all(f, dequantized(*e, w));
  f.setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
  for (const auto& p : e->parameters())
    if (p.trainable) {
      const auto v = e->get_tensor(p.name);
      f.set_tensor(p.name, v.data(), v.size());
    }
  const int32_t prompt[] = {3, 17, 42, 8, 1};
  e->reset_cache(16);
  f.reset_cache(16);
  std::vector<float> a = e->decode(prompt, 5), b = f.decode(prompt, 5);
  for (int step = 0; step < 4; ++step) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
      scale = std::max(scale, std::fabs(double(b[i])));
    }
    CHECK(worst <= 1e-5 * scale + 1e-6);
    const int32_t next = static_cast<int32_t>(std::max_element(b.begin(), b.end()) - b.begin());
    a = e->decode(&next, 1);
    b = f.decode(&next, 1);
  }
  CHECK(e->memory().kv_cache_bytes > 0);
}

// As test_model.cpp's check: Richardson-extrapolated central differences
// along a random direction over the named tensors, and on the largest
// elements (tolerances explained there).
void check_gradients(ps::Engine& e, const ps::Batch& b, const std::vector<std::string>& names, const char* label) {
  const int64_t tokens = counted_tokens(b);
  const auto g = fd::gradients(e, b, 0, names, tokens);
  const fd::Result r = fd::directional(e, b, 0, names, g, 1e-3, 99);
  CHECK(r.scale > 0);
  if (!pstest::close(r.fd, r.analytic, 1e-3, 1e-4 * r.scale))
    std::fprintf(stderr, "  %s: directional fd %.9g analytic %.9g (|g||u| %.3g)\n", label, r.fd, r.analytic, r.scale);
  CHECK_CLOSE(r.fd, r.analytic, 1e-3, 1e-4 * r.scale);
  for (const auto& n : {names.front(), names.back()})
    for (size_t i : fd::largest(g.at(n), 3)) {
      const double got = fd::element(e, b, 0, n, i, 6e-3);
      if (!pstest::close(got, g.at(n)[i], 1e-3, 1e-4))
        std::fprintf(stderr, "  %s: %s[%zu] fd %.9g analytic %.9g\n", label, n.c_str(), i, got, double(g.at(n)[i]));
      CHECK_CLOSE(got, g.at(n)[i], 1e-3, 1e-4);
    }
}

void test_gradients(Variant v) {
  const ps::ModelSpec s = spec(v);
  const Weights w = random_weights(s, 21);
  const ps::Batch b = ragged_batch(8, s.vocab_size, 5);
  {
    auto e = qengine(s, w);
    e->setup_lora(all_targets_lora(2, 4.0f, 0.1f, 5));  // dropout on: masks fixed by the counter
    randomize_lora_b(*e, 0.2, 6);
    check_gradients(*e, b, trainable_names(*e), "all targets");
  }
  {
    // Only layer 0's q_proj is adapted: its whole gradient comes back through
    // 4-bit input gradients (o_proj, the MLP and all of layer 1 are 4-bit).
    auto e = qengine(s, w);
    ps::LoraOptions o = all_targets_lora(3, 3.0f, 0.0f, 7);
    o.targets = {"q_proj"};
    o.layers = std::vector<int>{0};
    e->setup_lora(o);
    randomize_lora_b(*e, 0.3, 8);
    check_gradients(*e, b, trainable_names(*e), "layer 0 q_proj");
    // Nothing else is trainable: the 4-bit weights get no gradient.
    CHECK(trainable_names(*e).size() == 2);
    bool threw = false;
    try {
      e->get_gradient("model.layers.0.self_attn.q_proj.weight");
    } catch (const ps::Error&) {
      threw = true;
    }
    CHECK(threw);
  }
}

void test_training_lowers_loss() {
  const ps::ModelSpec s = spec(Variant::Llama);
  auto e = qengine(s, random_weights(s, 31));
  e->setup_lora(all_targets_lora(4, 8.0f, 0.0f, 5));
  const ps::Batch b = random_batch(2, 12, s.vocab_size, 6);
  const int64_t tokens = counted_tokens(b);
  ps::OptimizerStep step;
  step.lr = 1e-2f;
  const double first = e->evaluate(b).loss_sum / tokens;
  for (int i = 0; i < 40; ++i) {
    e->forward_backward(b, 1.0f / tokens);
    e->optimizer_step(step);
  }
  const double last = e->evaluate(b).loss_sum / tokens;
  if (!(last < 0.5 * first)) std::fprintf(stderr, "  training: loss %.4f -> %.4f\n", first, last);
  CHECK(last < 0.5 * first);
}

void test_full_refused() {
  const ps::ModelSpec s = spec(Variant::Llama);
  auto e = qengine(s, random_weights(s, 1));
  bool threw = false;
  try {
    e->setup_full();
  } catch (const ps::Error& err) {
    threw = std::string(err.what()).find("4 bits") != std::string::npos;
  }
  CHECK(threw);
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Full;
  o.quantization = nf4_options().quantization;
  threw = false;
  try {
    ps::estimate_memory(s, o);
  } catch (const ps::Error&) {
    threw = true;
  }
  CHECK(threw);
}

// A spec whose linears are whole multiples of 64 x 256 values: no partial blocks.
ps::ModelSpec block_aligned_spec() {
  ps::ModelSpec s = spec(Variant::Llama);
  s.hidden_size = 256;
  s.intermediate_size = 512;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 64;
  return s;
}

void test_resident_bytes() {
  for (bool dq : {true, false}) {
    const ps::ModelSpec s = block_aligned_spec();
    auto e = qengine(s, random_weights(s, 2), 64, dq);
    e->setup_lora(all_targets_lora(4, 8.0f, 0.0f, 5));
    const ps::Batch b = random_batch(2, 6, s.vocab_size, 1);
    e->forward_backward(b, 0.1f);
    e->optimizer_step(ps::OptimizerStep{});
    const ps::MemoryUsage u = e->memory();
    int64_t linears = 0, others = 0;
    int n_linear = 0;
    for (const auto& p : e->parameters()) {
      int64_t n = 1;
      for (auto d : p.shape) n *= d;
      if (p.trainable) continue;
      if (is_linear(p.name)) {
        linears += n;
        ++n_linear;
      } else {
        others += n;
      }
    }
    CHECK(u.quantized_params == linears);
    const double bits = 8.0 * u.quantized_bytes / linears;
    // 4 + 8/64 + 32/(64*256) = 4.1270 bits, plus one fp32 mean offset per tensor; without DQ 4 + 32/64.
    const double want = dq ? 4.0 + 8.0 / 64 + 32.0 / (64 * 256) : 4.5;
    const double per_tensor = dq ? 32.0 * n_linear / linears : 0.0;
    CHECK_CLOSE(bits, want + per_tensor, 1e-12, 0);
    if (dq) CHECK(bits < 4.128);
    // The estimate is the engine's own formula.
    ps::MemoryEstimateOptions o;
    o.method = ps::Method::Lora;
    o.batch_size = 2;
    o.seq_len = 6;
    o.lora.rank = 4;
    o.lora.targets = ps::lora_target_names();
    o.quantization = nf4_options(64, dq).quantization;
    const ps::MemoryEstimate est = ps::estimate_memory(s, o);
    CHECK(est.quantized_bytes == u.quantized_bytes);
    CHECK(est.quantized_params == u.quantized_params);
    CHECK(est.weight_bytes == u.weight_bytes);
    CHECK(u.weight_bytes == u.quantized_bytes + static_cast<uint64_t>(others + est.trainable_params) * 4);
    CHECK(u.trainable_bytes == est.gradient_bytes + est.optimizer_bytes);
    CHECK(u.activation_bytes == est.activation_bytes);
  }
  // Partial blocks (Qwen3's k_proj holds 96 values: a block and a half) add at most a block's scales per tensor.
  const ps::ModelSpec s = spec(Variant::Qwen3);
  auto e = qengine(s, random_weights(s, 3));
  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Frozen;
  o.quantization = nf4_options().quantization;
  CHECK(ps::estimate_memory(s, o).quantized_bytes == e->memory().quantized_bytes);
  CHECK(ps::estimate_memory(s, o).weight_bytes == e->memory().weight_bytes);
}

// ---- files ------------------------------------------------------------------

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}

struct File {
  std::string path;
  std::vector<uint8_t> bytes;
  uint64_t put(const void* p, size_t n) {
    while (bytes.size() % 8) bytes.push_back(0);
    const uint64_t at = bytes.size();
    bytes.insert(bytes.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    return at;
  }
  void write() {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
};

void test_files() {
  const ps::ModelSpec s = spec(Variant::Qwen3);  // partial blocks
  Weights w = random_weights(s, 41);
  const fs::path dir = fs::temp_directory_path() / ("ps_qlora_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  // 1) A BF16 checkpoint, quantized at load.
  File bf{(dir / "bf16.safetensors").string(), std::vector<uint8_t>(8, 0)};
  std::vector<ps::WeightRef> refs;
  for (const auto& info : ps::expected_weights(s)) {
    auto& v = w[info.name];
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      h[i] = to_bf16(v[i]);
      v[i] = ps::bf16_to_f32(h[i]);  // what the file holds
    }
    ps::WeightRef r;
    r.name = info.name;
    r.file = bf.path;
    r.dtype = ps::DType::BF16;
    r.shape = info.shape;
    r.offset = bf.put(h.data(), h.size() * 2);
    refs.push_back(r);
  }
  bf.write();
  ps::Engine from_file(s, nf4_options(64, true, 1));
  from_file.load_weights(refs);
  auto from_memory = qengine(s, w);  // the same values given from memory
  const ps::Batch b = random_batch(2, 8, s.vocab_size, 9);
  CHECK(from_file.evaluate(b).loss_sum == from_memory->evaluate(b).loss_sum);

  // 2) The same weights saved as bitsandbytes does after load_in_4bit: taken as they are.
  for (bool dq : {true, false}) {
    File bnb{(dir / (dq ? "bnb_dq.safetensors" : "bnb.safetensors")).string(), std::vector<uint8_t>(8, 0)};
    std::vector<ps::WeightRef> brefs;
    auto add = [&](const std::string& name, ps::DType dt, const void* p, size_t n, int64_t elements) {
      ps::WeightRef r;
      r.name = name;
      r.file = bnb.path;
      r.dtype = dt;
      r.shape = {elements};
      r.offset = bnb.put(p, n);
      brefs.push_back(r);
      return brefs.size() - 1;
    };
    for (const auto& info : ps::expected_weights(s)) {
      const auto& v = w[info.name];
      if (!is_linear(info.name)) {
        const size_t i = add(info.name, ps::DType::F32, v.data(), v.size() * 4, static_cast<int64_t>(v.size()));
        brefs[i].shape = info.shape;
        continue;
      }
      const ps::Nf4Quantized q = ps::nf4_quantize(v.data(), info.shape[0], info.shape[1], 64, dq);
      const size_t main = add(info.name, ps::DType::U8, q.codes.data(), q.codes.size(), static_cast<int64_t>(q.codes.size()));
      brefs[main].shape = {static_cast<int64_t>(q.codes.size()), 1};
      ps::Nf4QuantState st;
      st.blocksize = 64;
      st.shape = info.shape;
      st.double_quant = dq;
      st.nested_offset = q.nested_offset;
      brefs[main].nf4 = st;
      add(info.name + ".quant_map", ps::DType::F32, ps::nf4_code_table(), 64, 16);
      if (dq) {
        add(info.name + ".absmax", ps::DType::U8, q.absmax_codes.data(), q.absmax_codes.size(),
            static_cast<int64_t>(q.absmax_codes.size()));
        add(info.name + ".nested_absmax", ps::DType::F32, q.nested_absmax.data(), q.nested_absmax.size() * 4,
            static_cast<int64_t>(q.nested_absmax.size()));
        add(info.name + ".nested_quant_map", ps::DType::F32, ps::dynamic_map_signed(), 256 * 4, 256);
      } else {
        add(info.name + ".absmax", ps::DType::F32, q.absmax.data(), q.absmax.size() * 4,
            static_cast<int64_t>(q.absmax.size()));
      }
    }
    bnb.write();
    ps::Engine pre(s, nf4_options(64, dq, 1));
    pre.load_weights(brefs);
    auto same = qengine(s, w, 64, dq);
    CHECK(pre.evaluate(b).loss_sum == same->evaluate(b).loss_sum);
    CHECK(pre.memory().quantized_bytes == same->memory().quantized_bytes);

    // Errors name the tensor: an engine without quantization, a missing companion, a quant_map that is not NF4.
    auto error_of = [&](const ps::EngineOptions& o, std::vector<ps::WeightRef> r) {
      try {
        ps::Engine x(s, o);
        x.load_weights(r);
      } catch (const ps::Error& e) {
        return std::string(e.what());
      }
      return std::string();
    };
    ps::EngineOptions plain;
    plain.threads = 1;
    CHECK(error_of(plain, brefs).find("quantization nf4") != std::string::npos);
    std::vector<ps::WeightRef> missing;
    for (const auto& r : brefs)
      if (r.name != "model.layers.1.mlp.up_proj.weight.absmax") missing.push_back(r);
    CHECK(error_of(nf4_options(64, dq, 1), missing).find("model.layers.1.mlp.up_proj.weight.absmax") != std::string::npos);
    std::vector<ps::WeightRef> fp4 = brefs;
    for (auto& r : fp4)
      if (r.name == "model.layers.0.self_attn.q_proj.weight.quant_map") r.offset = fp4[0].offset;  // not the NF4 table
    CHECK(error_of(nf4_options(64, dq, 1), fp4).find("not the NF4 code table") != std::string::npos);
  }
  fs::remove_all(dir);
}

// Under quantization an F16/BF16 embedding and lm_head stay 16-bit, used from
// the mapping as stored (transformers keeps non-quantized modules in the
// 16-bit dtype under load_in_4bit). The model computes exactly what an fp32
// model holding the widened values computes: the head goes through the 16-bit
// GEMMs, which equal the fp32 GEMMs on the widened table bit for bit, so the
// loss, every gradient and the decoding logits have the same bits. Memory: 2
// bytes a parameter, nothing widened in the arena (the same activation bytes
// as the fp32 model), and the estimate (weight_dtype) is the engine's
// allocation to the byte. An F32 checkpoint's tables stay fp32.
// fp32 -> IEEE half by truncation (|x| < 2 here; below the normal range: zero).
uint16_t to_f16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u, exp = (b >> 23) & 0xFFu;
  if (exp < 113) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | ((exp - 112) << 10) | ((b >> 13) & 0x3FFu));
}

void test_half_tables(Variant v) {
  ps::ModelSpec s = spec(v);
  s.vocab_size = 3078;  // many GEMM column panels and a ragged tail
  const fs::path dir = fs::temp_directory_path() /
                       ("ps_qlora_half_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  for (ps::DType dt : {ps::DType::BF16, ps::DType::F16, ps::DType::F32}) {
    Weights w = random_weights(s, 51);
    File file{(dir / "model.safetensors").string(), std::vector<uint8_t>(8, 0)};
    std::vector<ps::WeightRef> refs;
    for (const auto& info : ps::expected_weights(s)) {
      auto& val = w[info.name];
      ps::WeightRef r;
      r.name = info.name;
      r.file = file.path;
      r.shape = info.shape;
      r.dtype = dt;
      if (dt == ps::DType::F32) {
        r.offset = file.put(val.data(), val.size() * 4);
      } else {
        std::vector<uint16_t> h(val.size());
        for (size_t i = 0; i < val.size(); ++i) {
          h[i] = dt == ps::DType::BF16 ? to_bf16(val[i]) : to_f16(val[i]);
          val[i] = dt == ps::DType::BF16 ? ps::bf16_to_f32(h[i]) : ps::f16_to_f32(h[i]);  // what the file holds
        }
        r.offset = file.put(h.data(), h.size() * 2);
      }
      refs.push_back(r);
    }
    file.write();
    ps::Engine from_file(s, nf4_options(64, true, 2));
    from_file.load_weights(refs);
    auto from_memory = qengine(s, w);  // the widened values, fp32, quantized the same
    const ps::Batch b = random_batch(2, 9, s.vocab_size, 53);
    CHECK(from_file.evaluate(b).loss_sum == from_memory->evaluate(b).loss_sum);
    CHECK(from_file.get_tensor("model.embed_tokens.weight") == w.at("model.embed_tokens.weight"));

    from_file.setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    from_memory->setup_lora(all_targets_lora(2, 4.0f, 0.0f, 5));
    randomize_lora_b(from_file, 0.2, 6);
    randomize_lora_b(*from_memory, 0.2, 6);
    CHECK(from_file.forward_backward(b, 0.05f).loss_sum == from_memory->forward_backward(b, 0.05f).loss_sum);
    double scale = 0;
    size_t differ = 0;
    for (const auto& p : from_file.parameters()) {
      if (!p.trainable) continue;
      const auto g1 = from_file.get_gradient(p.name), g2 = from_memory->get_gradient(p.name);
      for (size_t i = 0; i < g1.size(); ++i) {
        differ += std::memcmp(&g1[i], &g2[i], sizeof(float)) != 0;
        scale = std::max(scale, std::fabs(double(g2[i])));
      }
    }
    CHECK(scale > 1e-3);  // the gradients are not all zero
    CHECK(differ == 0);   // the head's input gradient takes the same vocabulary slices either way

    from_file.reset_cache(16);
    from_memory->reset_cache(16);
    const int32_t prompt[3] = {7, s.vocab_size - 1, 2048};
    CHECK(from_file.decode(prompt, 3) == from_memory->decode(prompt, 3));

    // Memory: the tables at 2 bytes (fp32 for an F32 file), nothing widened in the arena.
    ps::MemoryEstimateOptions o;
    o.method = ps::Method::Lora;
    o.batch_size = 2;
    o.seq_len = 9;
    o.lora.rank = 2;
    o.lora.targets = ps::lora_target_names();
    o.quantization = nf4_options().quantization;
    o.weight_dtype = dt;
    const ps::MemoryEstimate est = ps::estimate_memory(s, o);
    const ps::MemoryUsage u = from_file.memory();
    CHECK(u.weight_bytes == est.weight_bytes);
    CHECK(u.activation_bytes == est.activation_bytes);
    const uint64_t tables = static_cast<uint64_t>(s.tie_word_embeddings ? 1 : 2) * s.vocab_size * s.hidden_size;
    const ps::MemoryUsage um = from_memory->memory();
    CHECK(u.activation_bytes == um.activation_bytes);
    if (dt == ps::DType::F32) {
      CHECK(u.weight_bytes == um.weight_bytes);
    } else {
      CHECK(um.weight_bytes - u.weight_bytes == 2 * tables);
    }
  }
  fs::remove_all(dir);
}

}  // namespace

int main() {
  try {
    test_forward_matches_reference(Variant::Llama, 64, true);
    test_forward_matches_reference(Variant::Qwen3, 64, true);   // partial blocks, blocks across rows
    test_forward_matches_reference(Variant::Qwen2, 32, false);  // biases, fp32 absmax
    test_decode_matches();
    test_gradients(Variant::Llama);
    test_gradients(Variant::Qwen3);
    test_training_lowers_loss();
    test_full_refused();
    test_resident_bytes();
    test_files();
    test_half_tables(Variant::Llama);  // untied lm_head
    test_half_tables(Variant::Qwen3);  // tied
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_model_qlora");
}
