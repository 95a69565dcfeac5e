// NaN / Inf in a model, end to end in the engine:
//  - count_non_finite / count_non_finite_half count NaN and Inf by their bits
//    (f32, IEEE half, bfloat16; signed, quiet and signalling NaNs, the largest
//    finite values and subnormals are not counted);
//  - one NaN in layers.0 q_proj (an F16 file, kept 16-bit as stored) makes the
//    evaluation loss NaN (it used to come out finite: attention took the NaN
//    scores for "no visible key" and returned 0) and the decode logits NaN;
//  - Engine::non_finite_tensors names exactly the damaged tensors in
//    parameters() order with their counts: the 16-bit q_proj (1 NaN), an F32
//    norm with 2 Inf, a LoRA tensor set with a NaN (trainable), and nothing on
//    a clean model;
//  - a 4-bit (QLoRA) load refuses the NaN naming the tensor and its position.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <unistd.h>

#include "check.h"
#include "engine.h"
#include "error.h"
#include "model/half.h"
#include "model/non_finite.h"
#include "model/tensor_names.h"
#include "tiny_model.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kQ = "model.layers.0.self_attn.q_proj.weight";
constexpr const char* kNorm = "model.layers.1.post_attention_layernorm.weight";

uint16_t f16_of(float f) {  // exact for the values used here (|x| < 2, normal)
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = static_cast<int>((b >> 23) & 0xFFu) - 127 + 15;
  if (exp < 1) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | ((b & 0x7FFFFFu) >> 13));
}

void test_counts() {
  const float inf = std::numeric_limits<float>::infinity(), qnan = std::numeric_limits<float>::quiet_NaN();
  const float snan = std::numeric_limits<float>::signaling_NaN(), big = std::numeric_limits<float>::max();
  const std::vector<float> x = {1.0f, -inf, qnan, inf, -qnan, snan, big, -big, 1e-45f, 0.0f, -0.0f};
  const ps::NonFiniteCount c = ps::count_non_finite(x.data(), x.size());
  CHECK(c.nan == 3);
  CHECK(c.inf == 2);
  // f16: 0x7c00 +inf, 0xfc00 -inf, 0x7e00 / 0xfe01 NaN, 0x7bff max finite, 0x0001 subnormal.
  const std::vector<uint16_t> h = {0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x7bff, 0x0001, 0x3c00};
  const ps::NonFiniteCount ch = ps::count_non_finite_half(h.data(), h.size(), false);
  CHECK(ch.nan == 2);
  CHECK(ch.inf == 2);
  // bf16: 0x7f80 +inf, 0xff80 -inf, 0x7fc0 / 0x7f81 NaN, 0x7f7f max finite; 0x7c00 is finite in bf16.
  const std::vector<uint16_t> b = {0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x7f7f, 0x7c00, 0x3f80};
  const ps::NonFiniteCount cb = ps::count_non_finite_half(b.data(), b.size(), true);
  CHECK(cb.nan == 2);
  CHECK(cb.inf == 2);
}

// Writes every weight of w to one raw file: the block linears F16 (as a
// 16-bit checkpoint stores them; the engine keeps them 16-bit), the rest F32.
std::vector<ps::WeightRef> write_model(const ps::ModelSpec& s, const tiny::Weights& w, const fs::path& file,
                                       bool nan_in_q) {
  std::vector<uint8_t> bytes;
  std::vector<ps::WeightRef> refs;
  for (const auto& info : ps::expected_weights(s)) {
    const std::vector<float>& v = w.at(info.name);
    while (bytes.size() % 8) bytes.push_back(0);
    ps::WeightRef r;
    r.name = info.name;
    r.file = file.string();
    r.shape = info.shape;
    r.offset = bytes.size();
    if (info.name.find("_proj.weight") != std::string::npos) {
      r.dtype = ps::DType::F16;
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = f16_of(v[i]);
      if (nan_in_q && info.name == kQ) h[5] = 0x7e00;  // one F16 NaN
      const auto* p = reinterpret_cast<const uint8_t*>(h.data());
      bytes.insert(bytes.end(), p, p + h.size() * 2);
    } else {
      r.dtype = ps::DType::F32;
      const auto* p = reinterpret_cast<const uint8_t*>(v.data());
      bytes.insert(bytes.end(), p, p + v.size() * 4);
    }
    refs.push_back(r);
  }
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                               static_cast<std::streamsize>(bytes.size()));
  return refs;
}

ps::EngineOptions options() {
  ps::EngineOptions o;
  o.threads = 2;
  o.seed = 3;
  return o;
}

double eval_loss(ps::Engine& e, const ps::Batch& batch) {
  const ps::LossResult r = e.evaluate(batch);
  return r.loss_sum / static_cast<double>(r.tokens);
}

void test_engine() {
  const ps::ModelSpec s = tiny::spec(tiny::Variant::Llama);
  const tiny::Weights w = tiny::random_weights(s, 11);
  const fs::path dir = fs::temp_directory_path() / ("ps_non_finite_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const ps::Batch batch = tiny::random_batch(2, 40, s.vocab_size, 9);

  // Clean: a finite loss, nothing found.
  ps::Engine clean(s, options());
  clean.load_weights(write_model(s, w, dir / "clean.bin", false));
  clean.setup_lora(tiny::all_targets_lora(2, 4.0f, 0.0f, 5));
  CHECK(std::isfinite(eval_loss(clean, batch)));
  CHECK(clean.non_finite_tensors().empty());

  // One F16 NaN in layers.0 q_proj: the loss and the logits are NaN.
  ps::Engine e(s, options());
  e.load_weights(write_model(s, w, dir / "nan.bin", true));
  e.setup_lora(tiny::all_targets_lora(2, 4.0f, 0.0f, 5));
  const double loss = eval_loss(e, batch);
  std::printf("loss with a NaN in %s: %g (clean %g)\n", kQ, loss, eval_loss(clean, batch));
  CHECK(std::isnan(loss));
  e.reset_cache(8);
  const int32_t toks[3] = {1, 2, 3};
  const std::vector<float> logits = e.decode(toks, 3);
  CHECK(std::isnan(logits[0]));

  // Two Inf in an F32 norm and a NaN in a LoRA tensor.
  std::vector<float> norm = w.at(kNorm);
  norm[0] = std::numeric_limits<float>::infinity();
  norm[3] = -std::numeric_limits<float>::infinity();
  e.set_weight(kNorm, norm.data(), norm.size());
  const std::string lora_a = "model.layers.1.mlp.down_proj.lora_A.weight";
  std::vector<float> a = e.get_tensor(lora_a);
  a[1] = std::numeric_limits<float>::quiet_NaN();
  e.set_tensor(lora_a, a.data(), a.size());

  const std::vector<ps::NonFiniteTensor> found = e.non_finite_tensors();
  for (const auto& t : found)
    std::printf("  %s%s: %llu NaN, %llu Inf\n", t.name.c_str(), t.trainable ? " (trainable)" : "",
                static_cast<unsigned long long>(t.nan), static_cast<unsigned long long>(t.inf));
  CHECK(found.size() == 3);
  if (found.size() == 3) {
    CHECK(found[0].name == kQ && found[0].nan == 1 && found[0].inf == 0 && !found[0].trainable);
    CHECK(found[1].name == kNorm && found[1].nan == 0 && found[1].inf == 2 && !found[1].trainable);
    CHECK(found[2].name == lora_a && found[2].nan == 1 && found[2].inf == 0 && found[2].trainable);
  }
  // 4-bit (QLoRA): quantizing refuses the NaN at load, naming the tensor.
  {
    ps::EngineOptions o = options();
    o.quantization.type = ps::QuantizationOptions::Type::Nf4;
    ps::Engine q4(s, o);
    std::string what;
    try {
      q4.load_weights(write_model(s, w, dir / "nan4.bin", true));
    } catch (const ps::Error& e) {
      what = e.what();
    }
    std::printf("nf4 load: %s\n", what.c_str());
    CHECK(what.rfind(std::string(kQ) + ": ", 0) == 0);
    CHECK(what.find("non-finite value at row 0, column 5") != std::string::npos);
  }
  fs::remove_all(dir);
}

}  // namespace

int main() {
  try {
    test_counts();
    test_engine();
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  return pstest::finish("test_non_finite");
}
