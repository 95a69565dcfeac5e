#include "model/weights.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "error.h"
#include "model/bnb_weight.h"
#include "model/half.h"
#include "model/tensor_names.h"
#include "quant/nf4_dequantize_range.h"
#include "quant/nf4_tables.h"
#include "threadpool.h"

namespace ps {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << '[';
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

size_t dtype_size(DType t) { return t == DType::F32 ? 4 : t == DType::U8 ? 1 : 2; }
const char* dtype_name(DType t) {
  return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : t == DType::BF16 ? "BF16" : "U8";
}

// Runs fn over [0, n) on the pool when there is one and n is large.
void for_range(ThreadPool* pool, size_t n, const std::function<void(size_t, size_t)>& fn) {
  if (pool && n >= (1u << 16)) {
    pool->parallel_for(n, [&](size_t b, size_t e, int) { fn(b, e); });
  } else {
    fn(0, n);
  }
}

// Widens n elements of F32/F16/BF16 bytes to fp32.
void widen(ThreadPool* pool, DType dt, const uint8_t* src, float* dst, size_t n) {
  for_range(pool, n, [&](size_t b, size_t e) {
    if (dt == DType::F32) {
      std::memcpy(dst + b, src + 4 * b, (e - b) * 4);
      return;
    }
    for (size_t i = b; i < e; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = dt == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  });
}

constexpr size_t kStageValues = kWeightStageValues;

}  // namespace

bool is_quantized_linear(const std::string& name) {
  static const char* const kSuffixes[] = {".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
                                          ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
                                          ".mlp.gate_proj.weight",    ".mlp.up_proj.weight",
                                          ".mlp.down_proj.weight"};
  if (name.rfind("model.layers.", 0) != 0) return false;
  for (const char* s : kSuffixes) {
    const size_t n = std::strlen(s);
    if (name.size() > n && name.compare(name.size() - n, n, s) == 0) return true;
  }
  return false;
}

bool is_half_table(const std::string& name) { return name == kEmbedName || name == kLmHeadName; }

bool keeps_16bit(const std::string& name, bool quantized) {
  return is_half_table(name) || (!quantized && is_quantized_linear(name));
}

uint64_t nf4_resident_bytes(int64_t n, int blocksize, bool double_quant) {
  const uint64_t blocks = static_cast<uint64_t>((n + blocksize - 1) / blocksize);
  const uint64_t codes = static_cast<uint64_t>((n + 1) / 2);
  if (!double_quant) return codes + blocks * sizeof(float);
  const uint64_t nested = (blocks + kNf4NestedBlocksize - 1) / kNf4NestedBlocksize;
  return codes + blocks + nested * sizeof(float) + sizeof(float);  // + the nested offset
}

Nf4Weight WeightTensor::nf4_view() const {
  Nf4Weight w = nf4->view();
  if (w.double_quantized()) w.absmax_map = absmax_map();
  return w;
}

const float* WeightTensor::absmax_map() const {
  return nf4_absmax_map.empty() ? dynamic_map_signed() : nf4_absmax_map.data();
}

Nf4Weight WeightTensor::op_view() const { return nf4_device ? nf4_device->view() : nf4_view(); }

HalfWeight WeightTensor::half_view() const {
  HalfWeight w;
  w.data = half;
  w.bf16 = half_bf16;
  w.rows = shape.size() == 2 ? static_cast<int>(shape[0]) : 1;
  w.cols = shape.size() == 2 ? static_cast<int>(shape[1]) : static_cast<int>(numel);
  return w;
}

uint64_t WeightTensor::resident_bytes() const {
  if (nf4) return static_cast<uint64_t>(nf4->resident_bytes());
  if (nf4_device) {
    const Nf4Weight& w = nf4_device->view();
    return nf4_resident_bytes(w.numel(), w.blocksize, w.double_quantized());
  }
  return static_cast<uint64_t>(numel) * (half ? sizeof(uint16_t) : sizeof(float));
}

WeightStore::WeightStore(Backend& backend, ThreadPool* pool, std::vector<ParameterInfo> expected,
                         const QuantizationOptions& quantization)
    : backend_(backend), pool_(pool), quant_(quantization), host_(backend.host_memory()) {
  if (quant_.enabled()) nf4_check_blocksize(quant_.blocksize);
  for (auto& p : expected) {
    WeightTensor t;
    t.name = p.name;
    t.shape = p.shape;
    t.quantizable = quant_.enabled() && is_quantized_linear(p.name);
    t.keeps_half = keeps_16bit(p.name, quant_.enabled());
    t.numel = 1;
    for (int64_t d : p.shape) t.numel *= static_cast<size_t>(d);
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
}

float* WeightStore::alloc_tensor(const WeightTensor& t) {
  const size_t bytes = t.numel * sizeof(float);
  try {
    return static_cast<float*>(backend_.alloc(bytes));
  } catch (const OutOfMemory&) {
    throw OutOfMemory("model tensor \"" + t.name + "\" (the model needs " +
                          std::to_string(this->bytes() >> 20) + " MiB as fp32)",
                      bytes);
  }
}

uint16_t* WeightStore::alloc_half(const WeightTensor& t) {
  const size_t bytes = t.numel * sizeof(uint16_t);
  try {
    return static_cast<uint16_t*>(backend_.alloc(bytes));
  } catch (const OutOfMemory&) {
    throw OutOfMemory("model tensor \"" + t.name + "\" (16-bit)", bytes);
  }
}

void WeightStore::upload_from_file(const MappedFile& f, uint64_t offset, void* dst, size_t bytes) {
  const size_t chunk = kStageValues * sizeof(float);
  for (size_t done = 0; done < bytes;) {
    const size_t k = std::min(bytes - done, chunk);
    backend_.upload(static_cast<uint8_t*>(dst) + done, f.data() + offset + done, k);
    f.release_pages(offset + done, k);  // uploaded: the file's pages are not needed again
    done += k;
  }
}

void WeightStore::widen_into(const MappedFile& f, uint64_t offset, DType dt, float* dst, size_t n) {
  const uint8_t* src = f.data() + offset;
  if (host_) {  // backend memory is host memory: convert in place, no staging
    widen(pool_, dt, src, dst, n);
    return;
  }
  if (dt == DType::F32) {  // the file's bytes are the values
    upload_from_file(f, offset, dst, n * sizeof(float));
    return;
  }
  std::vector<float> stage(std::min(n, kStageValues));
  for (size_t done = 0; done < n;) {
    const size_t k = std::min(n - done, stage.size());
    widen(pool_, dt, src + done * dtype_size(dt), stage.data(), k);
    backend_.upload(dst + done, stage.data(), k * sizeof(float));
    f.release_pages(offset + done * dtype_size(dt), k * dtype_size(dt));
    done += k;
  }
}

void WeightStore::place_nf4(WeightTensor& t) {
  if (host_ || !t.nf4) return;
  try {
    t.nf4_device = std::make_shared<DeviceNf4>(backend_, t.nf4_view());
  } catch (const OutOfMemory&) {
    throw OutOfMemory("4-bit model tensor \"" + t.name + "\"", static_cast<size_t>(t.resident_bytes()));
  }
  t.nf4.reset();  // uploaded: reads download what they need (DeviceNf4::download_span)
}

WeightStore::~WeightStore() {
  for (auto& t : tensors_) drop(t);
}

void WeightStore::drop(WeightTensor& t) {
  if (t.owned && t.data) backend_.release(t.data);
  if (t.half_owned && t.half) backend_.release(const_cast<uint16_t*>(t.half));
  t.data = nullptr;
  t.owned = false;
  t.half = nullptr;
  t.half_owned = false;
  t.file.reset();
  t.nf4_device.reset();
  t.nf4.reset();
  t.nf4_absmax_map.clear();
}

void WeightStore::quantize_into(WeightTensor& t, const float* values) {
  // Across the pool: a load quantizes every block linear of the model, ~60 ns
  // a weight on one thread (minutes for a 7B model); the bytes do not depend
  // on the thread count (nf4_quantize.h).
  std::shared_ptr<Nf4Quantized> q;
  try {
    q = std::make_shared<Nf4Quantized>(
        nf4_quantize(values, t.shape[0], t.shape[1], quant_.blocksize, quant_.double_quant, pool_));
  } catch (const OutOfMemory&) {
    throw;
  } catch (const Error& e) {  // e.g. a NaN in the file: say which tensor
    throw Error(t.name + ": " + e.what());
  }
  drop(t);
  t.nf4 = std::move(q);
  place_nf4(t);
}

const WeightTensor& WeightStore::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("unknown model tensor \"" + name + "\"");
  return tensors_[it->second];
}

WeightTensor& WeightStore::mutable_get(const std::string& name) {
  return const_cast<WeightTensor&>(static_cast<const WeightStore*>(this)->get(name));
}

void WeightStore::load(const std::vector<WeightRef>& refs) {
  // Validate everything before touching memory, so a bad file leaves the store unchanged.
  std::map<std::string, const WeightRef*> by_name;  // every ref, companions of 4-bit weights too
  for (const auto& r : refs) by_name.emplace(r.name, &r);
  std::map<std::string, const WeightRef*> chosen;
  for (const auto& r : refs) {
    if (!has(r.name)) continue;  // not part of this architecture (e.g. tied lm_head, rotary buffers)
    if (chosen.count(r.name))
      throw Error("tensor \"" + r.name + "\" appears twice (in " + chosen[r.name]->file + " and " +
                  r.file + ")");
    const WeightTensor& t = get(r.name);
    if (r.nf4 || r.dtype == DType::U8) {
      if (!r.nf4)
        throw Error("tensor \"" + r.name + "\" in " + r.file + " is U8 without a bitsandbytes quant_state: " +
                    "only F32, F16 and BF16 weights (or bitsandbytes NF4 ones) can be loaded");
      if (!t.quantizable)
        throw Error("tensor \"" + r.name + "\" in " + r.file + " is stored 4-bit by bitsandbytes: " +
                    (quant_.enabled() ? std::string("only the decoder blocks' linear layers can be 4-bit here")
                                      : std::string("open the model with quantization nf4 (it is a 4-bit checkpoint)")));
    } else if (r.shape != t.shape) {
      throw Error("tensor \"" + r.name + "\" in " + r.file + " has shape " + shape_str(r.shape) +
                  " but the model config needs " + shape_str(t.shape) +
                  " (is config.json from the same model?)");
    }
    chosen[r.name] = &r;
  }
  for (const auto& t : tensors_) {
    if (!chosen.count(t.name) && !t.loaded())
      throw Error("the weights have no tensor \"" + t.name + "\" (expected shape " + shape_str(t.shape) +
                  "): the checkpoint is incomplete or is not a " +
                  "Llama-family model matching config.json");
  }
  std::map<std::string, std::shared_ptr<MappedFile>> files;
  auto file_of = [&](const std::string& path) {
    auto& f = files[path];
    if (!f) f = std::make_shared<MappedFile>(path);
    return f;
  };
  for (const auto& kv : chosen) {
    const WeightRef& r = *kv.second;
    if (r.nf4) continue;  // checked with its companions below
    const auto& f = file_of(r.file);
    const uint64_t bytes = get(r.name).numel * dtype_size(r.dtype);
    if (r.offset > f->size() || f->size() - r.offset < bytes)
      throw Error("weights file " + r.file + " is too short for tensor \"" + r.name + "\" (" +
                  std::to_string(bytes) + " bytes of " + dtype_name(r.dtype) + " at offset " + std::to_string(r.offset) +
                  ", file has " + std::to_string(f->size()) + "): the download may be incomplete");
  }
  // Checkpoints quantized by bitsandbytes: validated before changing anything,
  // copied one at a time below (on a GPU each goes to device memory at once).
  for (const auto& kv : chosen)
    if (kv.second->nf4) check_bnb_weight(*kv.second, get(kv.first).shape, by_name, file_of);

  std::vector<float> scratch;  // one fp32 copy of the weight being quantized
  for (const auto& kv : chosen) {
    const WeightRef& r = *kv.second;
    WeightTensor& t = mutable_get(r.name);
    if (r.nf4) {
      BnbWeight b = take_bnb_weight(r, get(r.name).shape, by_name, file_of);
      drop(t);
      t.nf4 = std::move(b.q);
      t.nf4_absmax_map = std::move(b.absmax_map);
      place_nf4(t);
      continue;
    }
    const auto& f = files[r.file];
    const uint8_t* src = f->data() + r.offset;
    if (t.quantizable) {
      scratch.resize(t.numel);
      widen(pool_, r.dtype, src, scratch.data(), t.numel);
      quantize_into(t, scratch.data());
      f->release_pages(r.offset, t.numel * dtype_size(r.dtype));  // the source bytes are not needed again
      continue;
    }
    drop(t);
    if (t.keeps_half && (r.dtype == DType::F16 || r.dtype == DType::BF16)) {
      t.half_bf16 = r.dtype == DType::BF16;
      if (host_ && reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) == 0) {
        t.half = reinterpret_cast<const uint16_t*>(src);  // read-only mapping, as stored
        t.file = f;
      } else {  // misaligned, or a device backend: a copy in backend memory
        uint16_t* h = alloc_half(t);
        upload_from_file(*f, r.offset, h, t.numel * sizeof(uint16_t));
        t.half = h;
        t.half_owned = true;
      }
      continue;
    }
    if (host_ && r.dtype == DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      t.data = const_cast<float*>(reinterpret_cast<const float*>(src));  // read-only mapping
      t.file = f;
      continue;
    }
    float* dst = alloc_tensor(t);
    t.data = dst;
    t.owned = true;
    widen_into(*f, r.offset, r.dtype, dst, t.numel);
    f->release_pages(r.offset, t.numel * dtype_size(r.dtype));  // converted: the source bytes are not needed again
  }
  ++generation_;
}

void WeightStore::set(const std::string& name, const float* data, size_t n) {
  WeightTensor& t = mutable_get(name);
  if (n != t.numel)
    throw Error("tensor \"" + name + "\" has " + std::to_string(t.numel) + " elements (shape " +
                shape_str(t.shape) + "), got " + std::to_string(n));
  if (t.quantizable) {
    quantize_into(t, data);
    ++generation_;
    return;
  }
  if (!t.owned) {
    drop(t);
    t.data = alloc_tensor(t);
    t.owned = true;
    ++generation_;
  }
  backend_.upload(t.data, data, n * sizeof(float));
}

void WeightStore::read(const std::string& name, float* out) const {
  const WeightTensor& t = get(name);
  if (!t.loaded()) throw Error("tensor \"" + name + "\" is not loaded yet");
  if (t.nf4) {
    nf4_dequantize_reference(t.nf4_view(), out);
    return;
  }
  if (t.nf4_device) {
    read_range(name, 0, t.numel, out);
    return;
  }
  if (t.half && host_) {
    backend_.half_to_float(t.half, t.half_bf16, out, t.numel);
    return;
  }
  if (t.half) {  // device memory: fetch the 16-bit values, widen on the host (half.h, the ops' exact conversion)
    std::vector<uint16_t> h(t.numel);
    backend_.download(h.data(), t.half, t.numel * sizeof(uint16_t));
    for (size_t i = 0; i < t.numel; ++i) out[i] = t.half_bf16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
    return;
  }
  backend_.download(out, t.data, t.numel * sizeof(float));
}

void WeightStore::read_range(const std::string& name, size_t first, size_t n, float* out) const {
  const WeightTensor& t = get(name);
  if (!t.loaded()) throw Error("tensor \"" + name + "\" is not loaded yet");
  if (first > t.numel || n > t.numel - first)
    throw Error("tensor \"" + name + "\" has " + std::to_string(t.numel) + " values; cannot read [" +
                std::to_string(first) + ", " + std::to_string(first + n) + ")");
  if (n == 0) return;
  if (t.nf4) {
    nf4_dequantize_range(t.nf4_view(), static_cast<int64_t>(first), static_cast<int64_t>(n), out);
    return;
  }
  if (t.nf4_device) {
    const HostNf4Span span = t.nf4_device->download_span(static_cast<int64_t>(first), static_cast<int64_t>(n));
    nf4_dequantize_range(span.view(t.absmax_map()), static_cast<int64_t>(first) - span.start, static_cast<int64_t>(n), out);
    return;
  }
  if (t.half && host_) {
    backend_.half_to_float(t.half + first, t.half_bf16, out, n);
    return;
  }
  if (t.half) {
    // Device memory: the 16-bit values are fetched into the upper half of
    // out's bytes and widened forward in place (half.h, the ops' exact
    // conversion), so no second buffer is needed. Value i is read (bytes
    // 2n + 2i) before fp32 value i is written (bytes 4i to 4i + 4), and the
    // writes never reach a value not yet read: 4i + 4 <= 2n + 2(i + 1) for i < n.
    uint8_t* bytes = reinterpret_cast<uint8_t*>(out);
    backend_.download(bytes + 2 * n, t.half + first, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes + 2 * n + 2 * i, sizeof h);
      out[i] = t.half_bf16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
    return;
  }
  backend_.download(out, t.data + first, n * sizeof(float));
}

float* WeightStore::writable(const std::string& name) {
  WeightTensor& t = mutable_get(name);
  if (t.is_nf4())
    throw Error("tensor \"" + name + "\" is held in 4 bits and cannot be trained: use LoRA on a 4-bit base (QLoRA), " +
                "or load the model without quantization for full fine-tuning");
  if (!t.loaded()) throw Error("tensor \"" + name + "\" is not loaded yet: load the weights first");
  if (t.owned) return t.data;
  float* dst = alloc_tensor(t);
  // A tensor used in place from the mapping: once copied out, its pages are
  // handed back, so full fine-tuning holds the fp32 copies only (not the
  // file's pages beside them until the last tensor of the file lets go).
  const std::shared_ptr<MappedFile> file = t.file;
  const void* mapped = t.half ? static_cast<const void*>(t.half) : static_cast<const void*>(t.data);
  const uint64_t mapped_bytes = t.numel * (t.half ? sizeof(uint16_t) : sizeof(float));
  if (t.half) {
    backend_.half_to_float(t.half, t.half_bf16, dst, t.numel);
    drop(t);
  } else {
    backend_.copy(dst, t.data, t.numel);
  }
  if (file) file->release_pages(static_cast<uint64_t>(static_cast<const uint8_t*>(mapped) - file->data()), mapped_bytes);
  t.file.reset();
  t.data = dst;
  t.owned = true;
  ++generation_;
  return dst;
}

void WeightStore::require_complete() const {
  std::string missing;
  int count = 0;
  for (const auto& t : tensors_) {
    if (t.loaded()) continue;
    if (count < 3) missing += (count ? ", " : "") + std::string("\"") + t.name + "\"";
    ++count;
  }
  if (count)
    throw Error("the model has no weights for " + missing +
                (count > 3 ? " and " + std::to_string(count - 3) + " more" : "") +
                ": call loadWeights (or set every weight) first");
}

uint64_t WeightStore::bytes() const {
  uint64_t b = 0;
  for (const auto& t : tensors_)
    b += t.is_nf4() || t.half ? t.resident_bytes()
               : t.quantizable ? nf4_resident_bytes(static_cast<int64_t>(t.numel), quant_.blocksize, quant_.double_quant)
                               : static_cast<uint64_t>(t.numel) * sizeof(float);
  return b;
}

uint64_t WeightStore::quantized_bytes() const {
  uint64_t b = 0;
  for (const auto& t : tensors_)
    if (t.quantizable)
      b += t.is_nf4() ? t.resident_bytes()
                 : nf4_resident_bytes(static_cast<int64_t>(t.numel), quant_.blocksize, quant_.double_quant);
  return b;
}

int64_t WeightStore::quantized_params() const {
  int64_t n = 0;
  for (const auto& t : tensors_)
    if (t.quantizable) n += static_cast<int64_t>(t.numel);
  return n;
}

int64_t WeightStore::params() const {
  int64_t n = 0;
  for (const auto& t : tensors_) n += static_cast<int64_t>(t.numel);
  return n;
}

}  // namespace ps
