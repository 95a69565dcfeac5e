#include "model/weights.h"

#include <cstring>
#include <sstream>

#include "error.h"
#include "model/half.h"
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

size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
const char* dtype_name(DType t) { return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "BF16"; }

// Runs fn over [0, n) on the pool when there is one and n is large.
void for_range(ThreadPool* pool, size_t n, const std::function<void(size_t, size_t)>& fn) {
  if (pool && n >= (1u << 16)) {
    pool->parallel_for(n, [&](size_t b, size_t e, int) { fn(b, e); });
  } else {
    fn(0, n);
  }
}

}  // namespace

WeightStore::WeightStore(Backend& backend, ThreadPool* pool, std::vector<ParameterInfo> expected)
    : backend_(backend), pool_(pool) {
  for (auto& p : expected) {
    WeightTensor t;
    t.name = p.name;
    t.shape = p.shape;
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

WeightStore::~WeightStore() {
  for (auto& t : tensors_) drop(t);
}

void WeightStore::drop(WeightTensor& t) {
  if (t.owned && t.data) backend_.release(t.data);
  t.data = nullptr;
  t.owned = false;
  t.file.reset();
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
  std::map<std::string, const WeightRef*> chosen;
  for (const auto& r : refs) {
    if (!has(r.name)) continue;  // not part of this architecture (e.g. tied lm_head, rotary buffers)
    if (chosen.count(r.name))
      throw Error("tensor \"" + r.name + "\" appears twice (in " + chosen[r.name]->file + " and " +
                  r.file + ")");
    const WeightTensor& t = get(r.name);
    if (r.shape != t.shape)
      throw Error("tensor \"" + r.name + "\" in " + r.file + " has shape " + shape_str(r.shape) +
                  " but the model config needs " + shape_str(t.shape) +
                  " (is config.json from the same model?)");
    chosen[r.name] = &r;
  }
  for (const auto& t : tensors_) {
    if (!chosen.count(t.name) && !t.data)
      throw Error("the weights have no tensor \"" + t.name + "\" (expected shape " + shape_str(t.shape) +
                  "): the checkpoint is incomplete or is not a " +
                  "Llama-family model matching config.json");
  }
  std::map<std::string, std::shared_ptr<MappedFile>> files;
  for (const auto& kv : chosen) {
    const WeightRef& r = *kv.second;
    auto& f = files[r.file];
    if (!f) f = std::make_shared<MappedFile>(r.file);
    const uint64_t bytes = get(r.name).numel * dtype_size(r.dtype);
    if (r.offset > f->size() || f->size() - r.offset < bytes)
      throw Error("weights file " + r.file + " is too short for tensor \"" + r.name + "\" (" +
                  std::to_string(bytes) + " bytes of " + dtype_name(r.dtype) + " at offset " + std::to_string(r.offset) +
                  ", file has " + std::to_string(f->size()) + "): the download may be incomplete");
  }
  for (const auto& kv : chosen) {
    const WeightRef& r = *kv.second;
    WeightTensor& t = mutable_get(r.name);
    const auto& f = files[r.file];
    const uint8_t* src = f->data() + r.offset;
    drop(t);
    if (r.dtype == DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
      t.data = const_cast<float*>(reinterpret_cast<const float*>(src));  // read-only mapping
      t.file = f;
      continue;
    }
    float* dst = alloc_tensor(t);
    t.data = dst;
    t.owned = true;
    const DType dt = r.dtype;
    for_range(pool_, t.numel, [&](size_t b, size_t e) {
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
  ++generation_;
}

void WeightStore::set(const std::string& name, const float* data, size_t n) {
  WeightTensor& t = mutable_get(name);
  if (n != t.numel)
    throw Error("tensor \"" + name + "\" has " + std::to_string(t.numel) + " elements (shape " +
                shape_str(t.shape) + "), got " + std::to_string(n));
  if (!t.owned) {
    drop(t);
    t.data = alloc_tensor(t);
    t.owned = true;
    ++generation_;
  }
  backend_.upload(t.data, data, n * sizeof(float));
}

float* WeightStore::writable(const std::string& name) {
  WeightTensor& t = mutable_get(name);
  if (!t.data) throw Error("tensor \"" + name + "\" is not loaded yet: load the weights first");
  if (t.owned) return t.data;
  float* dst = alloc_tensor(t);
  backend_.copy(dst, t.data, t.numel);
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
    if (t.data) continue;
    if (count < 3) missing += (count ? ", " : "") + std::string("\"") + t.name + "\"";
    ++count;
  }
  if (count)
    throw Error("the model has no weights for " + missing +
                (count > 3 ? " and " + std::to_string(count - 3) + " more" : "") +
                ": call loadWeights (or set every weight) first");
}

uint64_t WeightStore::bytes() const { return static_cast<uint64_t>(params()) * sizeof(float); }

int64_t WeightStore::params() const {
  int64_t n = 0;
  for (const auto& t : tensors_) n += static_cast<int64_t>(t.numel);
  return n;
}

}  // namespace ps
