// bf16 activations (Backend::bf16_activations, activations.h Bf16Kept), on
// the CPU's spelling of bf16 precision (tests/bf16_reference_backend.h):
//  - bf16_round against an independent round-to-nearest-even in double
//    (every binade, exact ties both ways, subnormals, overflow to inf,
//    inf / NaN / signed zero), values and bits;
//  - the plan: each layer's products kept in 16 bits, one fp32 working set,
//    the bytes as counted by hand from that rule; nothing kept in 16 bits
//    where backward recomputes (checkpointing, QLoRA's shared attention part);
//  - the engine: keeping the 16-bit copies and widening them back before a
//    layer's backward gives the same bytes (loss, every gradient) as
//    recomputing each layer from its input (checkpointing), for LoRA with
//    dropout, QLoRA, full fine-tuning, prompt and prefix tuning on Llama,
//    Qwen2 (biases) and Qwen3 (q/k norms: q_pre/k_pre kept too); a restore
//    missed or taken from the wrong layer breaks that equality. The rounding
//    really happens (the same backend with fp32 activations gives another
//    loss), and estimate_memory with bf16_activations is the arena to the byte.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "backend/cpu/cpu_backend.h"
#include "bf16_reference_backend.h"
#include "check.h"
#include "memory_estimate.h"
#include "model/activations.h"
#include "model/dims.h"
#include "op_test_util.h"
#include "rng.h"
#include "tiny_model.h"

using namespace tiny;

namespace {

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// bf16 has 8 significant bits and fp32's exponent range: its spacing in the
// binade [2^e, 2^(e+1)) is 2^(e-7), and 2^-133 below 2^-126 (subnormals).
// Round |x| to a multiple of the spacing, ties to even (nearbyint in the
// default rounding mode), in double, where every step here is exact.
float reference_bf16(float x) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const double a = std::fabs(static_cast<double>(x));
  if (a == 0.0) return x;
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): the binade is [2^(e-1), 2^e)
  const int binade = std::max(e - 1, -126);
  const double spacing = std::ldexp(1.0, binade - 7);
  const double r = std::nearbyint(a / spacing) * spacing;
  const double out = r >= std::ldexp(1.0, 128) ? std::numeric_limits<double>::infinity() : r;
  return static_cast<float>(std::signbit(x) ? -out : out);
}

void test_round_op() {
  std::vector<float> x;
  ps::Rng rng(3);
  for (int e = 1; e < 255; ++e)  // every normal binade, random mantissas
    for (int i = 0; i < 40; ++i) {
      const uint32_t sign = (rng.next_u64() & 1) << 31;
      x.push_back(from_bits(sign | (static_cast<uint32_t>(e) << 23) | (rng.next_u64() & 0x7FFFFF)));
    }
  for (int i = 0; i < 400; ++i) x.push_back(from_bits(rng.next_u64() & 0x807FFFFFu));  // subnormals
  // Exact ties, with an even and an odd kept last bit; one ulp either side of a tie.
  for (uint32_t kept : {0x3F800000u, 0x3F810000u, 0x00010000u, 0x7F7E0000u, 0x7F7F0000u, 0xC2C70000u})
    for (int32_t d : {-1, 0, 1}) x.push_back(from_bits(kept + 0x8000u + d));
  for (float f : {0.0f, -0.0f, FLT_MAX, -FLT_MAX, FLT_MIN, FLT_TRUE_MIN, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), 1.0f, -3.0f})
    x.push_back(f);
  const float nans[] = {std::numeric_limits<float>::quiet_NaN(), from_bits(0xFF800001u) /* signalling, negative */};
  while (x.size() < 150000) x.push_back(static_cast<float>(rng.normal() * 100.0));  // several threads' chunks

  std::vector<float> y = x;
  for (float n : nans) y.push_back(n);
  std::vector<uint16_t> bits(y.size(), 0xDEAD);
  ps::CpuBackend cpu(2);
  cpu.bf16_round(y.data(), bits.data(), y.size());
  std::vector<float> z = x;
  cpu.bf16_round(z.data(), nullptr, z.size());  // without bits: the same values

  size_t wrong = 0, wrong_bits = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = reference_bf16(x[i]);
    if (to_bits(y[i]) != to_bits(want) || to_bits(z[i]) != to_bits(want)) ++wrong;
    if (static_cast<uint32_t>(bits[i]) << 16 != to_bits(want)) ++wrong_bits;
  }
  CHECK(wrong == 0);
  CHECK(wrong_bits == 0);
  for (size_t k = 0; k < 2; ++k) {
    const size_t i = x.size() + k;
    CHECK(std::isnan(y[i]));
    CHECK(std::signbit(y[i]) == std::signbit(nans[k]));
    CHECK(std::isnan(from_bits(static_cast<uint32_t>(bits[i]) << 16)));
  }
  // Spot values worked by hand: 1 + 2^-8 is a tie, to even (1); 1 + 3*2^-8 to 1 + 2^-6.
  CHECK(reference_bf16(1.0f + 0x1p-8f) == 1.0f);
  CHECK(reference_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
  CHECK(std::isinf(reference_bf16(FLT_MAX)));
  std::printf("bf16_round: %zu values, %zu wrong, %zu wrong bit patterns\n", x.size(), wrong, wrong_bits);
}

size_t aligned(size_t bytes) { return (bytes + 63) / 64 * 64; }

// Four layers: two keep copies of their own besides the first (the tiny
// models have two, where only layer 0 keeps any, so a copy shared by the
// layers, or a restore from the wrong one, could not show).
ps::ModelSpec deep(Variant v) {
  ps::ModelSpec s = spec(v);
  s.num_layers = 4;
  return s;
}

// The plan's bytes from the rule in activations.cpp: each kept product is
// 16 bits per layer instead of 32, plus one 32-bit working copy.
void test_plan() {
  for (Variant v : {Variant::Llama, Variant::Qwen3}) {
    const ps::ModelDims d(deep(v));
    for (bool shared : {false, true}) {
      ps::PlanConfig c;
      c.dims = d;
      c.rows = 37;  // not a multiple of 16: alignment padding differs between 2 and 4 bytes
      c.train = true;
      c.share_attention = shared;
      for (int m = 0; m < ps::kNumModules; ++m) c.lora_rank[m] = 3;
      const ps::ActivationPlan fp32(c);
      c.bf16_activations = true;
      const ps::ActivationPlan bf16(c);
      std::vector<int> widths = {d.F, d.F};  // gate, up: always per layer
      if (!shared) {
        for (int w : {d.Dq, d.Dkv, d.Dkv, d.Dq}) widths.push_back(w);  // q, k, v, attn
        if (d.qk_norm) widths.insert(widths.end(), {d.Dq, d.Dkv});     // q_pre, k_pre
      }
      int64_t want = 0;
      for (int w : widths) {
        const size_t n = static_cast<size_t>(c.rows) * w;
        want += static_cast<int64_t>(aligned(n * 4)) + (d.L - 1) * static_cast<int64_t>(aligned(n * 2)) -
                d.L * static_cast<int64_t>(aligned(n * 4));
      }
      CHECK(static_cast<int64_t>(bf16.bytes()) - static_cast<int64_t>(fp32.bytes()) == want);
      CHECK(bf16.bytes() < fp32.bytes());

      std::vector<char> arena(bf16.bytes() + 64);
      char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(arena.data()) + 63) & ~uintptr_t(63));
      const ps::Activations a = bf16.bind(base);
      CHECK(static_cast<int>(a.layers.size()) == d.L);
      for (int l = 0; l < d.L; ++l) {
        const ps::LayerActs& s = a.layers[l];
        CHECK(s.gate == a.layers[0].gate && s.up == a.layers[0].up);  // one working set
        const bool last = l == d.L - 1;  // still in the working set when backward starts
        CHECK((s.kept.gate != nullptr) == !last && (s.kept.up != nullptr) == !last);
        CHECK((s.kept.q != nullptr) == (!shared && !last));
        CHECK((s.kept.q_pre != nullptr) == (!shared && !last && d.qk_norm));
        if (l > 0 && !last) {
          CHECK(s.kept.gate != a.layers[l - 1].kept.gate);
          CHECK(shared || s.kept.q != a.layers[l - 1].kept.q);
        }
        if (!last) CHECK(reinterpret_cast<char*>(s.kept.up) >= base && reinterpret_cast<char*>(s.kept.up) < base + bf16.bytes());
      }
      // Checkpointing recomputes everything: nothing in 16 bits, the fp32 plan's bytes.
      c.checkpoint = true;
      const ps::ActivationPlan ck16(c);
      c.bf16_activations = false;
      CHECK(ck16.bytes() == ps::ActivationPlan(c).bytes());
    }
  }
}

// The bf16 reference backend with activations in fp32: everything else equal.
class Fp32ActivationsBackend : public bf16ref::Bf16GemmCpuBackend {
 public:
  using Bf16GemmCpuBackend::Bf16GemmCpuBackend;
  bool bf16_activations() const override { return false; }
};

enum class Method { Lora, Qlora, Full, Prompt, Prefix };
const char* method_name(Method m) {
  switch (m) {
    case Method::Lora: return "lora";
    case Method::Qlora: return "qlora";
    case Method::Full: return "full";
    case Method::Prompt: return "prompt";
    case Method::Prefix: return "prefix";
  }
  return "?";
}

std::unique_ptr<ps::Engine> engine(const ps::ModelSpec& s, const Weights& w, Method m, bool ckpt,
                                   std::unique_ptr<ps::Backend> be) {
  ps::EngineOptions o;
  o.threads = 2;
  o.seed = 5;
  o.gradient_checkpointing = ckpt;
  if (m == Method::Qlora) {
    o.quantization.type = ps::QuantizationOptions::Type::Nf4;
    o.quantization.blocksize = 32;
  }
  auto e = std::make_unique<ps::Engine>(s, o, std::move(be));
  set_all(*e, w);
  if (m == Method::Lora || m == Method::Qlora) {
    e->setup_lora(all_targets_lora(3, 6.0f, m == Method::Lora ? 0.1f : 0.0f, 4));
    randomize_lora_b(*e, 0.2, 5);
  } else if (m == Method::Full) {
    e->setup_full();
  } else if (m == Method::Prompt) {
    ps::PromptTuningOptions p;
    p.num_virtual_tokens = 2;
    ps::Rng rng(6);
    p.init.resize(static_cast<size_t>(2) * s.hidden_size);
    for (auto& x : p.init) x = static_cast<float>(rng.normal());
    e->setup_prompt_tuning(p);
  } else {
    ps::PrefixTuningOptions p;
    p.num_virtual_tokens = 2;
    p.projection = true;
    p.encoder_hidden_size = 6;
    p.seed = 7;
    e->setup_prefix_tuning(p);
  }
  return e;
}

void test_engine_keep_equals_recompute() {
  for (Variant v : {Variant::Llama, Variant::Qwen2, Variant::Qwen3}) {
    const ps::ModelSpec s = deep(v);
    const Weights w = random_weights(s, 21);
    for (Method m : {Method::Lora, Method::Qlora, Method::Full, Method::Prompt, Method::Prefix}) {
      // prompt tuning prepends its tokens to each row: no packed rows
      const ps::Batch b = m == Method::Prompt ? random_batch(3, 11, s.vocab_size, 8) : ragged_batch(11, s.vocab_size, 8);
      auto kept = engine(s, w, m, false, std::make_unique<bf16ref::Bf16GemmCpuBackend>(2));
      auto recomputed = engine(s, w, m, true, std::make_unique<bf16ref::Bf16GemmCpuBackend>(2));
      auto fp32_acts = engine(s, w, m, false, std::make_unique<Fp32ActivationsBackend>(2));
      const double l_kept = kept->forward_backward(b, 0.05f).loss_sum;
      const double l_rec = recomputed->forward_backward(b, 0.05f).loss_sum;
      const double l_fp32 = fp32_acts->forward_backward(b, 0.05f).loss_sum;
      const bool same_loss = std::memcmp(&l_kept, &l_rec, sizeof(double)) == 0;
      size_t differing = 0, names = 0;
      for (const auto& n : trainable_names(*kept)) {
        ++names;
        if (!optest::same_bits(kept->get_gradient(n), recomputed->get_gradient(n))) ++differing;
      }
      CHECK(same_loss);
      CHECK(differing == 0);
      CHECK(l_kept != l_fp32);  // the products were rounded
      CHECK(std::fabs(l_kept - l_fp32) < 1e-2 * std::fabs(l_fp32));
      CHECK(kept->memory().activation_bytes < fp32_acts->memory().activation_bytes);

      // The estimate with bf16 activations is this arena, to the byte.
      ps::MemoryEstimateOptions o;
      o.batch_size = 3;  // ragged_batch: 3 rows of 11
      o.seq_len = 11;
      o.bf16_activations = true;
      if (m == Method::Lora || m == Method::Qlora) {
        o.method = ps::Method::Lora;
        o.lora.rank = 3;
        o.lora.targets = all_targets_lora(3, 6.0f, 0.0f, 4).targets;
        o.lora.dropout = m == Method::Lora ? 0.1f : 0.0f;
        if (m == Method::Qlora) {
          o.quantization.type = ps::QuantizationOptions::Type::Nf4;
          o.quantization.blocksize = 32;
        }
      } else if (m == Method::Full) {
        o.method = ps::Method::Full;
      } else if (m == Method::Prompt) {
        o.method = ps::Method::Prompt;
        o.prompt.num_virtual_tokens = 2;
      } else {
        o.method = ps::Method::Prefix;
        o.prefix.num_virtual_tokens = 2;
        o.prefix.encoder_hidden_size = 6;
      }
      const uint64_t estimated = ps::estimate_memory(s, o).activation_bytes;
      CHECK(estimated == kept->memory().activation_bytes);
      std::printf("%-7s %-6s loss %.9f (fp32 activations %.9f), %zu gradients identical to recomputing: %s; "
                  "activations %llu B (fp32 %llu, estimate %llu)\n",
                  variant_name(v), method_name(m), l_kept, l_fp32, names - differing,
                  same_loss && differing == 0 ? "yes" : "NO",
                  static_cast<unsigned long long>(kept->memory().activation_bytes),
                  static_cast<unsigned long long>(fp32_acts->memory().activation_bytes),
                  static_cast<unsigned long long>(estimated));
    }
  }
}

// A backend whose precision changes after the arena was made: the engine
// lays the arena out again (a bf16 plan's stale 16-bit copies would
// otherwise be widened back into an fp32 pass).
class SwitchedBackend : public bf16ref::Bf16GemmCpuBackend {
 public:
  using Bf16GemmCpuBackend::Bf16GemmCpuBackend;
  bool on = true;
  bool bf16_activations() const override { return on; }
};

void test_precision_switch_relays_the_arena() {
  const ps::ModelSpec s = deep(Variant::Llama);
  const Weights w = random_weights(s, 31);
  const ps::Batch b = ragged_batch(9, s.vocab_size, 3);
  auto owned = std::make_unique<SwitchedBackend>(2);
  SwitchedBackend* be = owned.get();
  auto switched = engine(s, w, Method::Full, false, std::move(owned));
  auto fp32 = engine(s, w, Method::Full, false, std::make_unique<Fp32ActivationsBackend>(2));
  switched->forward_backward(b, 0.05f);
  const uint64_t bf16_bytes = switched->memory().activation_bytes;
  be->on = false;
  switched->zero_gradients();
  const double l1 = switched->forward_backward(b, 0.05f).loss_sum;
  const double l2 = fp32->forward_backward(b, 0.05f).loss_sum;
  CHECK(std::memcmp(&l1, &l2, sizeof(double)) == 0);
  size_t differing = 0;
  for (const auto& n : trainable_names(*fp32))
    if (!optest::same_bits(switched->get_gradient(n), fp32->get_gradient(n))) ++differing;
  CHECK(differing == 0);
  CHECK(switched->memory().activation_bytes == fp32->memory().activation_bytes);
  CHECK(bf16_bytes < fp32->memory().activation_bytes);
}

}  // namespace

int main() {
  test_round_op();
  test_plan();
  test_engine_keep_equals_recompute();
  test_precision_switch_relays_the_arena();
  return pstest::finish("test_bf16_activations");
}
