// Random Llama checkpoints for the training benchmarks (bench_train,
// bench_gpu): every tensor of a spec stored as BF16 (the dtype Llama and
// SmolLM2 checkpoints ship in) at 64-byte aligned offsets of one file, the
// way the Node side hands a safetensors file to the engine (absolute offsets,
// no header). Values as a trained checkpoint roughly looks: projections and
// embeddings U(-0.0346, 0.0346) (sd 0.02), norms 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"
#include "rng.h"

namespace psbench {

// Published shapes the GPU benchmark trains and bench_nf4 loads.
inline ps::ModelSpec llama32_1b() {  // meta-llama/Llama-3.2-1B config.json
  ps::ModelSpec s;
  s.vocab_size = 128256;
  s.hidden_size = 2048;
  s.intermediate_size = 8192;
  s.num_layers = 16;
  s.num_heads = 32;
  s.num_kv_heads = 8;
  s.head_dim = 64;
  s.rms_norm_eps = 1e-5f;
  s.rope_theta = 500000.0f;
  s.rope_scaling = ps::RopeScaling::Llama3;
  s.rope_factor = 32.0f;
  s.rope_low_freq_factor = 1.0f;
  s.rope_high_freq_factor = 4.0f;
  s.rope_original_max_position = 8192;
  s.max_position_embeddings = 131072;
  s.tie_word_embeddings = true;
  return s;
}

inline ps::ModelSpec llama31_8b() {  // meta-llama/Llama-3.1-8B config.json
  ps::ModelSpec s = llama32_1b();
  s.hidden_size = 4096;
  s.intermediate_size = 14336;
  s.num_layers = 32;
  s.head_dim = 128;
  s.rope_factor = 8.0f;
  s.tie_word_embeddings = false;
  return s;
}

inline uint64_t numel(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (auto d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// fp32 -> bf16 bits, round to nearest even (what torch's .to(bfloat16) does for finite values).
inline uint16_t bf16_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

inline bool is_norm(const std::string& name) { return name.find("norm") != std::string::npos; }

// Where each tensor of the spec sits in the file `path` (BF16, 64-byte aligned offsets).
inline std::vector<ps::WeightRef> checkpoint_refs(const ps::ModelSpec& s, const std::string& path) {
  std::vector<ps::WeightRef> refs;
  uint64_t at = 0;
  for (const auto& w : ps::expected_weights(s)) {
    ps::WeightRef r;
    r.name = w.name;
    r.file = path;
    r.offset = at;
    r.dtype = ps::DType::BF16;
    r.shape = w.shape;
    at += (2 * numel(w.shape) + 63) / 64 * 64;
    refs.push_back(r);
  }
  return refs;
}

// One serial random stream over every tensor in order (bench_train's checkpoint).
inline void write_checkpoint(const ps::ModelSpec& s, const std::string& path) {
  ps::Rng rng(42);
  std::ofstream f(path, std::ios::binary);
  for (const auto& r : checkpoint_refs(s, path)) {
    const size_t n = numel(r.shape);
    const bool norm = is_norm(r.name);
    std::vector<uint16_t> h((n + 31) / 32 * 32, 0);  // padded to the next 64-byte offset
    for (size_t i = 0; i < n; ++i) h[i] = bf16_bits(norm ? 1.0f : static_cast<float>(rng.uniform(-0.0346, 0.0346)));
    f.seekp(static_cast<std::streamoff>(r.offset));
    f.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(h.size() * 2));
  }
  if (!f) throw std::runtime_error("cannot write the benchmark checkpoint " + path);
}

// Element i of tensor t, from a counter-based hash: the same values whatever
// the thread count, and billions of them in seconds (an 8B model has 8e9).
inline float random_weight(uint64_t tensor, uint64_t i) {
  uint64_t state = (tensor << 40) ^ i;
  const uint64_t u = ps::splitmix64(state) >> 40;  // 24 random bits
  return static_cast<float>((static_cast<double>(u) * (1.0 / 16777216.0) * 2.0 - 1.0) * 0.0346);
}

// fn(begin, end) over [0, n) split into `threads` contiguous chunks, in parallel.
template <typename F>
void parallel_chunks(size_t n, int threads, F&& fn) {
  const size_t T = static_cast<size_t>(std::max(1, threads));
  std::vector<std::thread> pool;
  for (size_t k = 0; k < T; ++k) pool.emplace_back([&, k] { fn(n * k / T, n * (k + 1) / T); });
  for (auto& th : pool) th.join();
}

// Tensor t's values (norms 1) as fp32, for Engine::set_weight.
inline void fill_random_weights(uint64_t t, bool norm, float* out, size_t n, int threads) {
  parallel_chunks(n, threads, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) out[i] = norm ? 1.0f : random_weight(t, i);
  });
}

// The same layout as write_checkpoint with the counter-based values, written
// tensor by tensor (one tensor's bf16 bytes in memory at a time).
inline void write_checkpoint_parallel(const ps::ModelSpec& s, const std::string& path, int threads) {
  std::ofstream f(path, std::ios::binary);
  std::vector<uint16_t> h;
  uint64_t t = 0;
  for (const auto& r : checkpoint_refs(s, path)) {
    const size_t n = numel(r.shape);
    const bool norm = is_norm(r.name);
    h.assign((n + 31) / 32 * 32, 0);  // padded to the next 64-byte offset
    parallel_chunks(n, threads, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) h[i] = bf16_bits(norm ? 1.0f : random_weight(t, i));
    });
    ++t;
    f.seekp(static_cast<std::streamoff>(r.offset));
    f.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(h.size() * 2));
    if (!f) break;
  }
  f.flush();
  if (!f) throw std::runtime_error("cannot write the benchmark checkpoint " + path + " (disk full?)");
}

// ---- a QLoRA checkpoint as bitsandbytes saves one -------------------------------
// The block linears (what load_in_4bit quantizes) already in NF4, blocksize
// 64 with double quantization, in bitsandbytes' tensors ("…weight" packed U8
// codes, ".absmax" U8, ".nested_absmax" F32, ".quant_map" F32[16],
// ".nested_quant_map" F32[256]; the quant_state fields in WeightRef::nf4),
// everything else BF16 as write_checkpoint_parallel. The values are that
// file's (each weight rounded to bf16, then quantized), so loading this file
// or quantizing the BF16 one on load gives the same 4-bit weights. The
// quantization runs here on `threads` threads, one weight each (the engine's
// load splits each weight's blocks over its thread pool instead, with the
// same bytes); and the refs go to a sidecar
// file path + ".refs" (read_refs), since nested_offset is known only after
// quantizing.

inline bool is_block_linear(const std::string& name) {
  static const char* const kLinears[] = {".q_proj.weight",    ".k_proj.weight",  ".v_proj.weight", ".o_proj.weight",
                                         ".gate_proj.weight", ".up_proj.weight", ".down_proj.weight"};
  if (name.rfind("model.layers.", 0) != 0) return false;
  for (const char* k : kLinears) {
    const size_t n = std::strlen(k);
    if (name.size() > n && name.compare(name.size() - n, n, k) == 0) return true;
  }
  return false;
}

inline void write_refs(const std::vector<ps::WeightRef>& refs, const std::string& path) {
  std::ofstream f(path);
  for (const auto& r : refs) {
    f << r.name << ' ' << static_cast<int>(r.dtype) << ' ' << r.offset << ' ' << r.shape.size();
    for (auto d : r.shape) f << ' ' << d;
    if (r.nf4) {
      char off[64];
      std::snprintf(off, sizeof off, "%a", static_cast<double>(r.nf4->nested_offset));  // exact
      f << " nf4 " << r.nf4->blocksize << ' ' << r.nf4->double_quant << ' ' << r.nf4->nested_blocksize << ' ' << off
        << ' ' << r.nf4->shape.at(0) << ' ' << r.nf4->shape.at(1);
    }
    f << '\n';
  }
  if (!f) throw std::runtime_error("cannot write " + path);
}

// The refs write_refs wrote, pointing into `file`.
inline std::vector<ps::WeightRef> read_refs(const std::string& path, const std::string& file) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::vector<ps::WeightRef> refs;
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    ps::WeightRef r;
    int dtype = 0;
    size_t dims = 0;
    in >> r.name >> dtype >> r.offset >> dims;
    r.dtype = static_cast<ps::DType>(dtype);
    r.file = file;
    r.shape.resize(dims);
    for (auto& d : r.shape) in >> d;
    std::string tag;
    if (in >> tag && tag == "nf4") {
      ps::Nf4QuantState st;
      std::string off;
      st.shape = {0, 0};
      in >> st.blocksize >> st.double_quant >> st.nested_blocksize >> off >> st.shape[0] >> st.shape[1];
      st.nested_offset = static_cast<float>(std::strtod(off.c_str(), nullptr));
      r.nf4 = st;
    }
    if (!in && !in.eof()) throw std::runtime_error("malformed line in " + path + ": " + line);
    refs.push_back(r);
  }
  return refs;
}

// Writes the file, returns its refs (also written to path + ".refs").
inline std::vector<ps::WeightRef> write_nf4_checkpoint(const ps::ModelSpec& s, const std::string& path, int threads) {
  constexpr int kBlock = 64;
  struct Item {
    uint64_t t;  // the tensor's index in expected_weights (its random stream)
    ps::ParameterInfo w;
  };
  std::vector<Item> items;
  uint64_t t = 0;
  for (const auto& w : ps::expected_weights(s)) items.push_back({t++, w});

  std::vector<ps::WeightRef> refs;
  std::ofstream f(path, std::ios::binary);
  uint64_t at = 0;
  auto put = [&](const std::string& name, ps::DType dt, std::vector<int64_t> shape, const void* data, size_t bytes) {
    ps::WeightRef r;
    r.name = name;
    r.file = path;
    r.offset = at;
    r.dtype = dt;
    r.shape = std::move(shape);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    static const char zeros[64] = {};
    f.write(zeros, static_cast<std::streamsize>((bytes + 63) / 64 * 64 - bytes));  // next 64-byte offset
    at += (bytes + 63) / 64 * 64;
    refs.push_back(r);
    return refs.size() - 1;
  };

  // The block linears in rounds of `threads` weights, one weight per thread.
  std::vector<const Item*> linears;
  for (const auto& it : items)
    if (is_block_linear(it.w.name)) linears.push_back(&it);
  const size_t T = static_cast<size_t>(std::max(1, threads));
  for (size_t first = 0; first < linears.size(); first += T) {
    const size_t n = std::min(T, linears.size() - first);
    std::vector<std::unique_ptr<ps::Nf4Quantized>> q(n);
    std::vector<std::string> errors(n);
    std::vector<std::thread> pool;
    for (size_t k = 0; k < n; ++k)
      pool.emplace_back([&, k] {
        try {
          const Item& it = *linears[first + k];
          std::vector<float> v(numel(it.w.shape));
          for (size_t i = 0; i < v.size(); ++i) {
            const uint32_t b = static_cast<uint32_t>(bf16_bits(random_weight(it.t, i))) << 16;  // as stored in BF16
            std::memcpy(&v[i], &b, 4);
          }
          q[k] = std::make_unique<ps::Nf4Quantized>(
              ps::nf4_quantize(v.data(), it.w.shape[0], it.w.shape[1], kBlock, /*double_quant=*/true));
        } catch (const std::exception& e) {
          errors[k] = e.what();
        }
      });
    for (auto& th : pool) th.join();
    for (size_t k = 0; k < n; ++k) {
      if (!errors[k].empty()) throw std::runtime_error("quantizing " + linears[first + k]->w.name + ": " + errors[k]);
      const ps::Nf4Quantized& x = *q[k];
      const std::string& name = linears[first + k]->w.name;
      const size_t main = put(name, ps::DType::U8, {static_cast<int64_t>(x.codes.size()), 1}, x.codes.data(),
                              x.codes.size());
      put(name + ".absmax", ps::DType::U8, {static_cast<int64_t>(x.absmax_codes.size())}, x.absmax_codes.data(),
          x.absmax_codes.size());
      put(name + ".nested_absmax", ps::DType::F32, {static_cast<int64_t>(x.nested_absmax.size())},
          x.nested_absmax.data(), x.nested_absmax.size() * 4);
      put(name + ".quant_map", ps::DType::F32, {16}, ps::nf4_code_table(), 16 * 4);
      put(name + ".nested_quant_map", ps::DType::F32, {256}, ps::dynamic_map_signed(), 256 * 4);
      ps::Nf4QuantState st;
      st.blocksize = kBlock;
      st.shape = linears[first + k]->w.shape;
      st.double_quant = true;
      st.nested_blocksize = ps::kNf4NestedBlocksize;
      st.nested_offset = x.nested_offset;
      refs[main].nf4 = st;
    }
  }
  // Everything else in BF16.
  std::vector<uint16_t> h;
  for (const auto& it : items) {
    if (is_block_linear(it.w.name)) continue;
    const size_t n = numel(it.w.shape);
    const bool norm = is_norm(it.w.name);
    h.resize(n);
    parallel_chunks(n, threads, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) h[i] = bf16_bits(norm ? 1.0f : random_weight(it.t, i));
    });
    put(it.w.name, ps::DType::BF16, it.w.shape, h.data(), n * 2);
  }
  f.flush();
  if (!f) throw std::runtime_error("cannot write the benchmark checkpoint " + path + " (disk full?)");
  write_refs(refs, path + ".refs");
  return refs;
}

}  // namespace psbench
