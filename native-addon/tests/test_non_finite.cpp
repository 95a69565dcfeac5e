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
//    a clean model; the same on the device simulator (DeviceSimBackend: every
//    tensor in device memory, fetched by byte range);
//  - a 4-bit (QLoRA) load refuses the NaN naming the tensor and its position;
//  - nf4_dequantize_range gives the whole-tensor reference dequantization's
//    bits for every range tried (starts on odd values, inside and at the ends
//    of blocks and of double quantization groups; blocksizes 32, 64, 128;
//    shapes whose last block is partial), and refuses a range past the end;
//  - the chunked scan (model/non_finite_scan.h) on the CPU backend and on the
//    device simulator: tests/non_finite_cases.h (NaN / Inf at chunk
//    boundaries, in the last chunk, NaN / Inf absmax and nested scales of
//    4-bit weights, hand-worked counts and the old whole-tensor path's).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <unistd.h>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "device_sim_backend.h"
#include "engine.h"
#include "error.h"
#include "model/non_finite.h"
#include "model/tensor_names.h"
#include "non_finite_cases.h"
#include "quant/nf4_dequantize_range.h"
#include "quant/nf4_quantize.h"
#include "tiny_model.h"

namespace fs = std::filesystem;

namespace {

using nfcases::kQ;
constexpr const char* kNorm = nfcases::kEngineNorm;

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
  clean.load_weights(nfcases::write_model(s, w, dir / "clean.bin", false));
  clean.setup_lora(tiny::all_targets_lora(2, 4.0f, 0.0f, 5));
  CHECK(std::isfinite(eval_loss(clean, batch)));
  CHECK(clean.non_finite_tensors().empty());

  // One F16 NaN in layers.0 q_proj: the loss and the logits are NaN.
  ps::Engine e(s, options());
  e.load_weights(nfcases::write_model(s, w, dir / "nan.bin", true));
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
      q4.load_weights(nfcases::write_model(s, w, dir / "nan4.bin", true));
    } catch (const ps::Error& e) {
      what = e.what();
    }
    std::printf("nf4 load: %s\n", what.c_str());
    CHECK(what.rfind(std::string(kQ) + ": ", 0) == 0);
    CHECK(what.find("non-finite value at row 0, column 5") != std::string::npos);
  }
  fs::remove_all(dir);
}

// nf4_dequantize_range against the whole-tensor reference, bit for bit.
void test_nf4_range() {
  struct Shape {
    int64_t rows, cols;
  };
  const Shape shapes[] = {{1, 1}, {1, 3}, {3, 5}, {7, 64}, {5, 100}, {33, 250}, {130, 130}, {3, 11111}};
  size_t ranges = 0;
  for (const Shape& sh : shapes)
    for (int blocksize : {32, 64, 128})
      for (bool dq : {false, true}) {
        const int64_t n = sh.rows * sh.cols;
        const std::vector<float> v = nfcases::random_values(static_cast<size_t>(n), static_cast<uint64_t>(n + blocksize));
        const ps::Nf4Quantized q = ps::nf4_quantize(v.data(), sh.rows, sh.cols, blocksize, dq);
        std::vector<float> ref(static_cast<size_t>(n));
        ps::nf4_dequantize_reference(q.view(), ref.data());
        const int64_t group = int64_t(blocksize) * ps::kNf4NestedBlocksize;  // values per nested group
        std::vector<int64_t> firsts = {0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, n / 2, n - 2, n - 1,
                                       group - 1, group, group + 1};
        for (int64_t first : firsts) {
          if (first < 0 || first >= n) continue;
          for (int64_t len : {int64_t(0), int64_t(1), int64_t(2), int64_t(63), int64_t(64), int64_t(65), int64_t(97),
                              n - first}) {
            if (len > n - first) continue;
            std::vector<float> got(static_cast<size_t>(len) + 1, 12345.0f);
            ps::nf4_dequantize_range(q.view(), first, len, got.data());
            ++ranges;
            if (std::memcmp(got.data(), ref.data() + first, static_cast<size_t>(len) * sizeof(float)) != 0 ||
                got[static_cast<size_t>(len)] != 12345.0f)
              pstest::fail(__FILE__, __LINE__,
                           "nf4_dequantize_range [" + std::to_string(sh.rows) + ", " + std::to_string(sh.cols) +
                               "] blocksize " + std::to_string(blocksize) + (dq ? " dq" : "") + ": values [" +
                               std::to_string(first) + ", " + std::to_string(first + len) +
                               ") differ from the reference (or were written past the range)");
          }
        }
        bool threw = false;
        try {
          float sink[2];
          ps::nf4_dequantize_range(q.view(), n - 1, 2, sink);
        } catch (const ps::Error&) {
          threw = true;
        }
        CHECK(threw);
      }
  std::printf("nf4_dequantize_range: %zu ranges equal to the reference\n", ranges);
}

fs::path temp_dir(const char* what) {
  const fs::path dir = fs::temp_directory_path() / ("ps_non_finite_" + std::string(what) + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// The chunked scan on the CPU backend (host fp32 / 16-bit counted in place,
// 4-bit in chunks) and on the device simulator (everything in chunks).
void test_scan() {
  const fs::path dir = temp_dir("scan");
  {
    ps::CpuBackend cpu(2);
    nfcases::store_cases(cpu, dir);
  }
  {
    devsim::DeviceSimBackend sim(2);
    nfcases::store_cases(sim, dir);
  }
  nfcases::check_engine_found("cpu", nfcases::engine_found(dir, nullptr));
  nfcases::check_engine_found("devsim", nfcases::engine_found(dir, std::make_unique<devsim::DeviceSimBackend>(2)));
  fs::remove_all(dir);
}

}  // namespace

int main() {
  try {
    test_counts();
    test_engine();
    test_nf4_range();
    test_scan();
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  return pstest::finish("test_non_finite");
}
