// Loading weights from files: F32 used in place (aligned) or copied
// (misaligned), BF16 and F16 widened exactly, tensors spread over two shard
// files, names the model does not use ignored; and every way a checkpoint can
// be wrong answered with an error that names the tensor or file.
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "check.h"
#include "error.h"
#include "model/half.h"
#include "model/weights.h"
#include "tiny_model.h"

using namespace tiny;
namespace fs = std::filesystem;

namespace {

uint16_t to_bf16(float f) {  // truncation: the test stores values that are exact in bf16
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}

// IEEE half of a float that is exactly representable (normal range, 10-bit mantissa).
uint16_t to_f16(float f) {
  if (f == 0.0f) return std::signbit(f) ? 0x8000 : 0;
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = static_cast<int>((b >> 23) & 0xFF) - 127 + 15;
  const uint32_t mant = (b >> 13) & 0x3FFu;
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | mant);
}

struct Shard {
  std::string path;
  std::vector<uint8_t> bytes;
};

// Rounds weights to what each dtype holds exactly, and lays them out in two
// shards; tensor i gets dtype i % 4: F32 aligned, F32 misaligned, BF16, F16.
std::vector<ps::WeightRef> write_checkpoint(const ps::ModelSpec& s, Weights& w, const fs::path& dir) {
  Shard shards[2] = {{(dir / "model-00001-of-00002.safetensors").string(), {}},
                     {(dir / "model-00002-of-00002.safetensors").string(), {}}};
  for (auto& sh : shards) sh.bytes.resize(8, 0xAB);  // a stand-in header
  std::vector<ps::WeightRef> refs;
  int i = 0;
  for (const auto& info : ps::expected_weights(s)) {
    std::vector<float>& v = w[info.name];
    Shard& sh = shards[i % 2];
    ps::WeightRef r;
    r.name = info.name;
    r.file = sh.path;
    r.shape = info.shape;
    const int kind = i % 4;
    if (kind == 1) sh.bytes.push_back(0);  // misalign by one byte
    r.offset = sh.bytes.size();
    if (kind <= 1) {
      r.dtype = ps::DType::F32;
      const size_t at = sh.bytes.size();
      sh.bytes.resize(at + 4 * v.size());
      std::memcpy(&sh.bytes[at], v.data(), 4 * v.size());
    } else {
      r.dtype = kind == 2 ? ps::DType::BF16 : ps::DType::F16;
      for (float& x : v) {
        const uint16_t h = kind == 2 ? to_bf16(x) : to_f16(x);
        x = kind == 2 ? ps::bf16_to_f32(h) : ps::f16_to_f32(h);  // what the file holds
        sh.bytes.push_back(static_cast<uint8_t>(h & 0xFF));
        sh.bytes.push_back(static_cast<uint8_t>(h >> 8));
      }
    }
    refs.push_back(r);
    ++i;
  }
  for (auto& sh : shards) {
    std::ofstream f(sh.path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(sh.bytes.data()), static_cast<std::streamsize>(sh.bytes.size()));
  }
  return refs;
}

template <typename F>
void expect_error(F&& f, const std::string& a, const std::string& b = "") {
  try {
    f();
    pstest::fail(__FILE__, __LINE__, "expected an error mentioning \"" + a + "\"");
  } catch (const ps::Error& err) {
    const std::string m = err.what();
    if (m.find(a) == std::string::npos || m.find(b) == std::string::npos)
      pstest::fail(__FILE__, __LINE__, "error \"" + m + "\" lacks \"" + a + "\" / \"" + b + "\"");
  }
}

void test_load(const fs::path& dir) {
  for (Variant v : {Variant::Llama, Variant::Qwen2}) {
    const ps::ModelSpec s = spec(v);
    Weights w = random_weights(s, 301);
    for (auto& kv : w)  // keep the values in F16's normal range
      for (float& x : kv.second)
        if (std::fabs(x) < 1e-4f) x = 1e-4f;
    std::vector<ps::WeightRef> refs = write_checkpoint(s, w, dir);
    // Names the model does not use are ignored (a rotary buffer; lm_head of a tied model).
    ps::WeightRef extra = refs[0];
    extra.name = "model.rotary_emb.inv_freq";
    extra.shape = {3};
    refs.push_back(extra);
    if (s.tie_word_embeddings) {
      extra = refs[0];
      extra.name = "lm_head.weight";
      refs.push_back(extra);
    }
    ps::Engine loaded(s, ps::EngineOptions{});
    loaded.load_weights(refs);
    for (const auto& kv : w) {
      const auto got = loaded.get_tensor(kv.first);
      CHECK(got.size() == kv.second.size() && std::memcmp(got.data(), kv.second.data(), 4 * got.size()) == 0);
    }
    ps::Engine given(s, ps::EngineOptions{});
    set_all(given, w);
    const ps::Batch b = random_batch(2, 6, s.vocab_size, 2);
    const double l1 = loaded.evaluate(b).loss_sum, l2 = given.evaluate(b).loss_sum;
    CHECK(std::memcmp(&l1, &l2, sizeof(double)) == 0);
    // The frozen 16-bit tensors (block linears, the embedding, the lm_head)
    // stay 16-bit: 2 bytes a value. Norms and biases are fp32.
    uint64_t kept16 = 0;
    for (const auto& r : refs) {
      const bool linear = r.name.rfind("model.layers.", 0) == 0 && r.name.find("_proj.weight") != std::string::npos;
      const bool table = r.name == "model.embed_tokens.weight" || r.name == "lm_head.weight";
      if ((r.dtype == ps::DType::BF16 || r.dtype == ps::DType::F16) && (linear || table) && w.count(r.name))
        kept16 += w.at(r.name).size();
    }
    CHECK(kept16 > 0);
    CHECK(loaded.memory().weight_bytes == given.memory().weight_bytes - 2 * kept16);
    // Full fine-tuning copies the mapped tensors out and can train them.
    loaded.setup_full();
    loaded.forward_backward(b, 0.1f);
    loaded.optimizer_step(ps::OptimizerStep{});
    CHECK(loaded.get_tensor(refs[0].name) != w[refs[0].name]);
  }
}

void test_errors(const fs::path& dir) {
  const ps::ModelSpec s = spec(Variant::Llama);
  Weights w = random_weights(s, 302);
  const std::vector<ps::WeightRef> good = write_checkpoint(s, w, dir);
  ps::Engine e(s, ps::EngineOptions{});
  const std::string q = "model.layers.1.self_attn.q_proj.weight";
  auto without = [&](const std::string& name) {
    std::vector<ps::WeightRef> r;
    for (const auto& x : good)
      if (x.name != name) r.push_back(x);
    return r;
  };
  auto find = [&](std::vector<ps::WeightRef>& r, const std::string& name) -> ps::WeightRef& {
    for (auto& x : r)
      if (x.name == name) return x;
    throw std::runtime_error("no " + name);
  };
  expect_error([&] { e.load_weights(without(q)); }, q, "incomplete");
  auto r = good;
  find(r, q).shape = {16, 15};
  expect_error([&] { e.load_weights(r); }, q, "[16, 15]");
  r = good;
  find(r, q).file = (dir / "missing.safetensors").string();
  expect_error([&] { e.load_weights(r); }, "missing.safetensors");
  r = good;
  find(r, q).offset = fs::file_size(find(r, q).file) - 8;
  expect_error([&] { e.load_weights(r); }, q, "too short");
  r = good;
  r.push_back(find(r, q));
  expect_error([&] { e.load_weights(r); }, q, "twice");
  // After the failures the engine still loads a good checkpoint.
  e.load_weights(good);
  CHECK(e.evaluate(random_batch(1, 5, s.vocab_size, 1)).tokens == 4);
}

// Every one of the 65536 half values against its definition.
void test_half_conversion() {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const int sign = (h >> 15) ? -1 : 1;
    const int exp = (h >> 10) & 0x1F;
    const int mant = h & 0x3FF;
    const float got = ps::f16_to_f32(static_cast<uint16_t>(h));
    if (exp == 31) {
      if (mant == 0 ? !(std::isinf(got) && (got < 0) == (sign < 0)) : !std::isnan(got)) ++bad;
      continue;
    }
    const double want = exp == 0 ? sign * std::ldexp(mant, -24) : sign * std::ldexp(1024 + mant, exp - 25);
    if (static_cast<double>(got) != want || std::signbit(got) != (sign < 0)) ++bad;
  }
  CHECK(bad == 0);
  CHECK(ps::bf16_to_f32(0x3F80) == 1.0f);
  CHECK(ps::bf16_to_f32(0xC040) == -3.0f);
}

}  // namespace

int main() {
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  const fs::path dir = fs::temp_directory_path() / ("ps_test_weights_" + std::to_string(stamp));
  fs::create_directories(dir);
  try {
    test_half_conversion();
    test_load(dir);
    test_errors(dir);
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return pstest::finish("test_model_weights");
}
