// The named store of a model's base tensors (fp32). A tensor's data is either
// a read-only view into a memory-mapped safetensors file (aligned F32) or a
// buffer the store owns (converted F16/BF16, a tensor given from memory, or
// one made writable for full fine-tuning). Pointers are host memory: the CPU
// backend uses them directly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "model/mmap_file.h"

namespace ps {

class ThreadPool;

struct WeightTensor {
  std::string name;
  std::vector<int64_t> shape;
  size_t numel = 0;
  float* data = nullptr;  // nullptr until loaded
  bool owned = false;     // data was allocated by the store (else it is in a mapping)
  std::shared_ptr<MappedFile> file;  // keeps the mapping alive while data points into it
};

class WeightStore {
 public:
  // expected: the tensors the spec needs, in the engine's fixed order.
  WeightStore(Backend& backend, ThreadPool* pool, std::vector<ParameterInfo> expected);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  void load(const std::vector<WeightRef>& refs);
  void set(const std::string& name, const float* data, size_t n);  // copies
  // Makes the tensor an owned, writable buffer (copying it out of a mapping).
  float* writable(const std::string& name);

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const WeightTensor& get(const std::string& name) const;  // throws naming unknown names
  const std::vector<WeightTensor>& tensors() const { return tensors_; }

  // Throws naming the first tensors no one has provided yet.
  void require_complete() const;
  uint64_t bytes() const;  // every tensor as fp32, loaded or not
  int64_t params() const;
  // Changes whenever a data pointer changes, so holders of raw pointers re-bind.
  uint64_t generation() const { return generation_; }

 private:
  WeightTensor& mutable_get(const std::string& name);
  void drop(WeightTensor& t);
  float* alloc_tensor(const WeightTensor& t);  // OutOfMemory names the tensor
  Backend& backend_;
  ThreadPool* pool_;
  std::vector<WeightTensor> tensors_;
  std::map<std::string, size_t> index_;
  uint64_t generation_ = 1;
};

}  // namespace ps
