// The chunked NaN / Inf scan (model/non_finite_scan.h) on one backend, shared
// by test_non_finite (the CPU backend and the device simulator
// DeviceSimBackend) and tests/cuda/test_non_finite_cuda (the CUDA backend: on
// a GPU, or the CPU-side CUDA simulator in every CPU build).
//
// store_cases(): a weight store on the backend holding every kind of tensor
// the scan meets: NF4 weights with and without double quantization (loaded
// through set(), i.e. quantized), F16 and BF16 tables kept 16-bit (loaded
// from a file: a read-only mapping on the host, a device copy elsewhere) and
// an fp32 norm, each damaged at places that matter to a chunk of 97 values
// (odd, so chunks start in the middle of a byte of two codes, of a 64-value
// block and of a double quantization's group of 256 blocks): the first and
// the last value of a chunk, the tensor's last value, a block straddling a
// chunk boundary whose absmax is NaN or Inf (the scale of a bitsandbytes
// checkpoint is taken unchecked; here it is written into the store's 4-bit
// weight directly: its host codes, or its device copy through the backend, as
// a device store keeps no host copy), a double quantization group whose nested scale is NaN or
// Inf. Each count is checked against
//  - a count worked out by hand from the planted values (for an Inf absmax:
//    from the codes, an NF4 code of 0.0 making 0 * Inf = NaN), and
//  - the old whole-tensor path (WeightStore::read of the whole tensor, then
//    count_non_finite), for chunk sizes 1, 63, 64, 65, 97, 16384, numel - 1,
//    numel, numel + 1 and the default;
// and the chunks read back (read_range) are the whole read() bit for bit. The
// scratch never exceeds the chunk, a tensor smaller than a chunk gets a
// scratch of its own size, and device trainables (backend_floats) are
// fetched in chunks too.
//
// engine_found(): the engine scenario of test_non_finite (an F16 NaN in a
// block linear, two Inf in a norm, a NaN in a LoRA tensor) on a given
// backend; every backend must name the same tensors with the same counts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "check.h"
#include "engine.h"
#include "error.h"
#include "model/non_finite.h"
#include "model/non_finite_scan.h"
#include "model/tensor_names.h"
#include "model/weights.h"
#include "quant/nf4_tables.h"
#include "rng.h"
#include "tiny_model.h"

namespace nfcases {

namespace fs = std::filesystem;

constexpr const char* kQ = "model.layers.0.self_attn.q_proj.weight";   // NF4 [130, 130]: 265 blocks, 2 groups
constexpr const char* kUp = "model.layers.0.mlp.up_proj.weight";       // NF4 [33, 250]: 129 blocks, last one 58 values
constexpr const char* kEmbed = "model.embed_tokens.weight";            // F16 [333, 7], kept 16-bit
constexpr const char* kHead = "lm_head.weight";                        // BF16 [101, 9], kept 16-bit
constexpr const char* kNorm = "model.norm.weight";                     // fp32 [1000]
constexpr size_t kChunk = 97;
constexpr const char* kEngineNorm = "model.layers.1.post_attention_layernorm.weight";
constexpr const char* kEngineLora = "model.layers.1.mlp.down_proj.lora_A.weight";

inline uint16_t f16_of(float f) {  // exact for the values used here (|x| < 2, normal)
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = static_cast<int>((b >> 23) & 0xFFu) - 127 + 15;
  if (exp < 1) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | ((b & 0x7FFFFFu) >> 13));
}

inline uint16_t bf16_of(float f) {  // truncation: any finite value serves here
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}

inline std::vector<float> random_values(size_t n, uint64_t seed) {
  ps::Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(0.3 * rng.normal());
  return v;
}

// The old path: the whole tensor as fp32 at once, then counted.
inline ps::NonFiniteCount whole_tensor_count(const ps::WeightStore& s, const std::string& name) {
  std::vector<float> all(s.get(name).numel);
  s.read(name, all.data());
  return ps::count_non_finite(all.data(), all.size());
}

// read_range over [0, numel) in chunks of `chunk`, concatenated, against read().
inline bool chunks_equal_whole(const ps::WeightStore& s, const std::string& name, size_t chunk) {
  const size_t n = s.get(name).numel;
  std::vector<float> all(n), parts(n);
  s.read(name, all.data());
  for (size_t first = 0; first < n; first += chunk) s.read_range(name, first, std::min(chunk, n - first), parts.data() + first);
  return std::memcmp(all.data(), parts.data(), n * sizeof(float)) == 0;
}

struct Want {
  uint64_t nan, inf;
};

inline void check_count(const char* what, const std::string& name, const ps::NonFiniteCount& got, const Want& want) {
  if (got.nan == want.nan && got.inf == want.inf) return;
  pstest::fail(__FILE__, __LINE__,
               std::string(what) + " " + name + ": got " + std::to_string(got.nan) + " NaN / " + std::to_string(got.inf) +
                   " Inf, want " + std::to_string(want.nan) + " / " + std::to_string(want.inf));
}

// Values of block `b` of a 4-bit weight whose absmax became +-Inf: an NF4 code
// of 0.0 gives 0 * Inf = NaN, every other code +-Inf. `absmax_nan`: the
// block's absmax itself came out 0 * Inf = NaN (a double-quantized code of
// 0.0 times an Inf nested scale), so every value of the block is NaN.
inline void add_inf_block(const ps::Nf4Quantized& q, int64_t b, bool absmax_nan, Want& w) {
  const int64_t n = q.rows * q.cols, begin = b * q.blocksize, end = std::min(n, begin + q.blocksize);
  const float* table = ps::nf4_code_table();
  for (int64_t i = begin; i < end; ++i) {
    const uint8_t byte = q.codes[static_cast<size_t>(i >> 1)];
    const int c = (i & 1) ? (byte & 0x0F) : (byte >> 4);
    if (absmax_nan || table[c] == 0.0f) ++w.nan;
    else ++w.inf;
  }
}

// Writes one fp32 scale of a store's 4-bit weight (its absmax, or its nested
// absmax under double quantization): into the host codes on a host backend,
// through the backend into the device copy otherwise (no host copy stays there).
inline void set_scale(ps::Backend& be, const ps::WeightTensor& w, bool nested, size_t i, float value) {
  if (w.nf4) {
    (nested ? w.nf4->nested_absmax : w.nf4->absmax)[i] = value;
    return;
  }
  const ps::Nf4Weight v = w.nf4_device->view();
  be.upload(const_cast<float*>(nested ? v.nested_absmax : v.absmax) + i, &value, sizeof value);
}

// The codes of a store's 4-bit weight, wherever they are held.
inline std::vector<uint8_t> codes_of(const ps::WeightTensor& w) {
  if (w.nf4) return w.nf4->codes;
  return w.nf4_device->download_span(0, static_cast<int64_t>(w.numel)).codes;
}

struct StoreCase {
  std::unique_ptr<ps::WeightStore> store;
  std::vector<std::pair<std::string, Want>> want;  // hand-worked counts, per tensor
};

// One store (double_quant or not) with every tensor damaged; its files in dir.
inline StoreCase damaged_store(ps::Backend& be, const fs::path& dir, bool double_quant) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<ps::ParameterInfo> expected = {{kQ, {130, 130}, false},
                                             {kUp, {33, 250}, false},
                                             {kEmbed, {333, 7}, false},
                                             {kHead, {101, 9}, false},
                                             {kNorm, {1000}, false}};
  ps::QuantizationOptions q;
  q.type = ps::QuantizationOptions::Type::Nf4;
  q.blocksize = 64;
  q.double_quant = double_quant;
  StoreCase sc;
  sc.store = std::make_unique<ps::WeightStore>(be, nullptr, expected, q);
  ps::WeightStore& s = *sc.store;

  // fp32 norm: NaN at the first value of chunks 0 and 1 and at the last of chunk 1, -Inf at the
  // first value of the last chunk (970 = 10 * 97), Inf at the tensor's last value.
  std::vector<float> norm = random_values(1000, 1);
  norm[0] = norm[97] = norm[193] = nan;
  norm[970] = -inf;
  norm[999] = inf;
  s.set(kNorm, norm.data(), norm.size());
  sc.want.push_back({kNorm, {3, 2}});

  const std::vector<float> qv = random_values(130 * 130, 2), uv = random_values(33 * 250, 3);
  s.set(kQ, qv.data(), qv.size());
  s.set(kUp, uv.data(), uv.size());
  // The same quantization on the host (its bytes do not depend on where it runs), for the counts below.
  const ps::Nf4Quantized wq = ps::nf4_quantize(qv.data(), 130, 130, 64, double_quant);
  const ps::Nf4Quantized wu = ps::nf4_quantize(uv.data(), 33, 250, 64, double_quant);
  CHECK(codes_of(s.get(kQ)) == wq.codes && codes_of(s.get(kUp)) == wu.codes);

  // 16-bit tables from a file, kept 16-bit as stored.
  std::vector<uint16_t> embed(333 * 7), head(101 * 9);
  const std::vector<float> ev = random_values(embed.size(), 4), hv = random_values(head.size(), 5);
  for (size_t i = 0; i < embed.size(); ++i) embed[i] = f16_of(ev[i]);
  for (size_t i = 0; i < head.size(); ++i) head[i] = bf16_of(hv[i]);
  embed[96] = 0x7c00;    // +Inf, the last value of chunk 0
  embed[485] = 0x7e00;   // NaN, the first of chunk 5
  embed[2328] = 0xfc00;  // -Inf, the first of the last chunk (24 * 97)
  embed[2330] = 0xfe01;  // NaN, the last value
  sc.want.push_back({kEmbed, {2, 2}});
  head[0] = 0x7fc0;    // NaN
  head[5] = 0x7c00;    // finite in bfloat16 (an F16 Inf): not counted
  head[908] = 0x7f80;  // +Inf, the last value
  sc.want.push_back({kHead, {1, 1}});
  const fs::path file = dir / (double_quant ? "tables_dq.bin" : "tables.bin");
  {
    std::ofstream f(file, std::ios::binary);
    f.write(reinterpret_cast<const char*>(embed.data()), static_cast<std::streamsize>(embed.size() * 2));
    f.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size() * 2));
  }
  ps::WeightRef re{kEmbed, file.string(), 0, ps::DType::F16, {333, 7}, std::nullopt};
  ps::WeightRef rh{kHead, file.string(), embed.size() * 2, ps::DType::BF16, {101, 9}, std::nullopt};
  s.load({re, rh});

  // The 4-bit weights' scales (what the scan and read() dequantize).
  const ps::WeightTensor& tq = s.get(kQ);
  const ps::WeightTensor& tu = s.get(kUp);
  Want q_want{0, 0}, up_want{0, 0};
  if (!double_quant) {
    set_scale(be, tq, false, 1, nan);    // block [64, 128) straddles the chunk boundary 97: 64 NaN
    set_scale(be, tq, false, 4, inf);    // block [256, 320) straddles 291
    set_scale(be, tq, false, 264, nan);  // the last block: 4 values [16896, 16900)
    q_want.nan += 64 + 4;
    add_inf_block(wq, 4, false, q_want);
    set_scale(be, tu, false, 128, -inf);  // up's last block, 58 values [8192, 8250), in the last chunk [8148, 8250)
    add_inf_block(wu, 128, false, up_want);
  } else {
    // q: group 1 (blocks 256..264, values [16384, 16900)) NaN: 8 * 64 + 4 = 516 values; the
    // group starts inside chunk 168 [16296, 16393).
    set_scale(be, tq, true, 1, nan);
    q_want.nan += 516;
    // up: its only group's scale Inf: every block's absmax is code * Inf + offset, +-Inf, or
    // NaN where the dynamic map's value of the block's code is 0.
    set_scale(be, tu, true, 0, inf);
    const float* map = tu.absmax_map();
    for (int64_t b = 0; b < wu.view().blocks(); ++b)
      add_inf_block(wu, b, map[wu.absmax_codes[static_cast<size_t>(b)]] == 0.0f, up_want);
  }
  sc.want.push_back({kQ, q_want});
  sc.want.push_back({kUp, up_want});
  return sc;
}

inline void store_cases(ps::Backend& be, const fs::path& dir) {
  for (bool dq : {false, true}) {
    StoreCase sc = damaged_store(be, dir, dq);
    const ps::WeightStore& s = *sc.store;
    const char* tag = dq ? "double-quant store" : "store";
    // A chunk of 97 values: the hand-worked counts, the old path's, and the chunk bookkeeping.
    ps::NonFiniteScan scan(be, kChunk);
    size_t chunks = 0, largest = 0;
    for (const auto& tw : sc.want) {
      const ps::WeightTensor& w = s.get(tw.first);
      const ps::NonFiniteCount got = scan.weight(s, w);
      check_count(tag, tw.first + " (chunk 97)", got, tw.second);
      std::printf("  %s %s: %llu NaN, %llu Inf\n", tag, tw.first.c_str(), static_cast<unsigned long long>(got.nan),
                  static_cast<unsigned long long>(got.inf));
      check_count(tag, tw.first + " (old whole-tensor path)", whole_tensor_count(s, tw.first), tw.second);
      const bool chunked = w.is_nf4() || !be.host_memory();
      if (chunked) {
        chunks += (w.numel + kChunk - 1) / kChunk;
        largest = std::max(largest, w.numel);
      }
      CHECK(chunks_equal_whole(s, tw.first, kChunk));
      CHECK(chunks_equal_whole(s, tw.first, 1));
      CHECK(chunks_equal_whole(s, tw.first, 64));
    }
    CHECK(scan.chunks() == chunks);
    CHECK(scan.scratch_values() == kChunk);
    std::printf("%s on %s: %zu chunks of <= %zu values, scratch %zu values\n", tag, be.name().c_str(), scan.chunks(),
                kChunk, scan.scratch_values());
    // Other chunk sizes, down to one value, around a block, a group, the whole tensor.
    for (const auto& tw : sc.want) {
      const size_t n = s.get(tw.first).numel;
      for (size_t chunk : {size_t(1), size_t(63), size_t(64), size_t(65), size_t(16384), n - 1, n, n + 1}) {
        ps::NonFiniteScan other(be, chunk);
        check_count(tag, tw.first + " (chunk " + std::to_string(chunk) + ")", other.weight(s, s.get(tw.first)),
                    tw.second);
        CHECK(other.scratch_values() <= chunk);
      }
    }
    // Every tensor smaller than the default chunk: the scratch is the largest chunked tensor, one chunk each.
    ps::NonFiniteScan dflt(be);
    for (const auto& tw : sc.want) check_count(tag, tw.first + " (default chunk)", dflt.weight(s, s.get(tw.first)), tw.second);
    CHECK(dflt.scratch_values() == largest);
    CHECK(dflt.chunks() == (be.host_memory() ? 2u : sc.want.size()));
    // A range past the end is refused, naming the tensor.
    std::string what;
    float sink[2];
    try {
      s.read_range(kUp, 8249, 2, sink);
    } catch (const ps::Error& e) {
      what = e.what();
    }
    CHECK(what.find(kUp) != std::string::npos);
  }

  // Trainable-like backend memory: 1000 fp32 values, -Inf at the last value of chunk 0, NaN at the
  // first of chunk 3, Inf at the last value.
  std::vector<float> t = random_values(1000, 6);
  t[96] = -std::numeric_limits<float>::infinity();
  t[291] = std::numeric_limits<float>::quiet_NaN();
  t[999] = std::numeric_limits<float>::infinity();
  float* dev = static_cast<float*>(be.alloc(t.size() * sizeof(float)));
  be.upload(dev, t.data(), t.size() * sizeof(float));
  ps::NonFiniteScan scan(be, kChunk);
  check_count("backend floats", "trainable", scan.backend_floats(dev, t.size()), {1, 2});
  CHECK(scan.chunks() == (be.host_memory() ? 0u : 11u));
  be.release(dev);
}

// Every weight of w in one raw file: the block linears F16 (as a 16-bit
// checkpoint stores them; the engine keeps them 16-bit), the rest F32;
// nan_in_q: one F16 NaN in layers.0 q_proj (value 5: row 0, column 5).
inline std::vector<ps::WeightRef> write_model(const ps::ModelSpec& s, const tiny::Weights& w, const fs::path& file,
                                              bool nan_in_q) {
  std::vector<uint8_t> bytes;
  std::vector<ps::WeightRef> refs;
  for (const auto& info : ps::expected_weights(s)) {
    const std::vector<float>& v = w.at(info.name);
    while (bytes.size() % 8) bytes.push_back(0);
    ps::WeightRef r{info.name, file.string(), bytes.size(), ps::DType::F32, info.shape, std::nullopt};
    if (info.name.find("_proj.weight") != std::string::npos) {
      r.dtype = ps::DType::F16;
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = f16_of(v[i]);
      if (nan_in_q && info.name == kQ) h[5] = 0x7e00;
      const auto* p = reinterpret_cast<const uint8_t*>(h.data());
      bytes.insert(bytes.end(), p, p + h.size() * 2);
    } else {
      const auto* p = reinterpret_cast<const uint8_t*>(v.data());
      bytes.insert(bytes.end(), p, p + v.size() * 4);
    }
    refs.push_back(r);
  }
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                               static_cast<std::streamsize>(bytes.size()));
  return refs;
}

// The engine scenario: the tiny Llama of write_model with the NaN in q_proj,
// two Inf set into an fp32 norm, a NaN set into a LoRA tensor. backend:
// nullptr for the engine's own CPU backend.
inline std::vector<ps::NonFiniteTensor> engine_found(const fs::path& dir, std::unique_ptr<ps::Backend> backend) {
  const ps::ModelSpec s = tiny::spec(tiny::Variant::Llama);
  const tiny::Weights w = tiny::random_weights(s, 11);
  ps::EngineOptions o;
  o.threads = 2;
  o.seed = 3;
  std::unique_ptr<ps::Engine> e =
      backend ? std::make_unique<ps::Engine>(s, o, std::move(backend)) : std::make_unique<ps::Engine>(s, o);
  e->load_weights(write_model(s, w, dir / "engine_nan.bin", true));
  e->setup_lora(tiny::all_targets_lora(2, 4.0f, 0.0f, 5));
  std::vector<float> norm = w.at(kEngineNorm);
  norm[0] = std::numeric_limits<float>::infinity();
  norm[3] = -std::numeric_limits<float>::infinity();
  e->set_weight(kEngineNorm, norm.data(), norm.size());
  std::vector<float> a = e->get_tensor(kEngineLora);
  a[1] = std::numeric_limits<float>::quiet_NaN();
  e->set_tensor(kEngineLora, a.data(), a.size());
  return e->non_finite_tensors();
}

// What engine_found must name, on every backend.
inline void check_engine_found(const char* backend, const std::vector<ps::NonFiniteTensor>& found) {
  for (const auto& t : found)
    std::printf("  %s: %s%s: %llu NaN, %llu Inf\n", backend, t.name.c_str(), t.trainable ? " (trainable)" : "",
                static_cast<unsigned long long>(t.nan), static_cast<unsigned long long>(t.inf));
  CHECK(found.size() == 3);
  if (found.size() != 3) return;
  CHECK(found[0].name == kQ && found[0].nan == 1 && found[0].inf == 0 && !found[0].trainable);
  CHECK(found[1].name == kEngineNorm && found[1].nan == 0 && found[1].inf == 2 && !found[1].trainable);
  CHECK(found[2].name == kEngineLora && found[2].nan == 1 && found[2].inf == 0 && found[2].trainable);
}

}  // namespace nfcases
