// The named store of a model's base tensors. A tensor's data is either a
// read-only view into a memory-mapped safetensors file or a buffer the store
// owns (a converted or misaligned tensor, one given from memory, or one made
// writable for full fine-tuning). With the CPU backend the pointers are host
// memory, used by its ops directly (a mapped tensor costs no copy).
//
// 16-bit checkpoints (F16 / BF16) stay 16-bit where the weights are frozen
// (WeightTensor::half, data stays nullptr; see keeps_16bit): without
// quantization the seven linears of each block, the embedding and the lm_head
// (a tied embedding is the lm_head); LoRA, prompt and prefix tuning never
// change them, and the 16-bit GEMMs of backend.h widen tiles exactly, giving
// the fp32 results bit for bit (the loss head's too: model/loss_head.cpp).
// The embedding lookup widens the rows it reads (embedding_forward_half).
// Full fine-tuning makes every tensor an fp32 master copy (writable()).
// Other tensors (norms, biases) are fp32.
//
// With NF4 quantization the seven linears of each decoder block are held in
// 4 bits instead (WeightTensor::nf4, data stays nullptr): quantized from the
// file's or the caller's values, or taken from bitsandbytes' saved tensors
// (model/bnb_weight.h). No fp32 copy of a quantized weight stays resident.
// The embedding and lm_head stay as the checkpoint stores them, as
// transformers keeps non-quantized modules in the 16-bit dtype under
// load_in_4bit: F16/BF16 ones are used from the mapping as they are
// (WeightTensor::half; the model widens the rows it needs), F32 ones as fp32.
//
// Under a backend whose memory is not host memory (a GPU, backend.h
// host_memory()), nothing is used from the mapping: every fp32 tensor and
// 16-bit one is uploaded into backend memory (16-bit files widened to fp32
// through a bounded host staging buffer, so the model is never twice in host
// RAM; kept 16-bit ones uploaded as they are), and every 4-bit weight is
// moved to a device copy (model/device_nf4.h; its host codes are freed once
// uploaded, so a GPU run does not hold the 4-bit model in host RAM too).
// data / half / op_view() are then backend (device) pointers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "half_weight.h"
#include "model/device_nf4.h"
#include "model/mmap_file.h"
#include "quant/nf4_quantize.h"

namespace ps {

class ThreadPool;

struct WeightTensor {
  std::string name;
  std::vector<int64_t> shape;
  size_t numel = 0;
  float* data = nullptr;  // nullptr until loaded
  bool owned = false;     // data was allocated by the store (else it is in a mapping)
  std::shared_ptr<MappedFile> file;  // keeps the mapping alive while data points into it
  bool quantizable = false;          // held in 4 bits when the store quantizes (a block linear)
  std::shared_ptr<Nf4Quantized> nf4; // the 4-bit weight in host memory (host backends only)
  std::vector<float> nf4_absmax_map; // a checkpoint's own dynamic map (else the built-in one)
  bool keeps_half = false;           // held 16-bit when its file stores it so (keeps_16bit)
  const uint16_t* half = nullptr;    // the 16-bit values (data stays nullptr)
  bool half_bf16 = false;            // bfloat16, else IEEE half
  bool half_owned = false;           // copied out of a misaligned mapping
  std::shared_ptr<DeviceNf4> nf4_device;  // the 4-bit weight in backend memory (device backends only)
  bool is_nf4() const { return nf4 != nullptr || nf4_device != nullptr; }  // held in 4 bits, on either side
  Nf4Weight nf4_view() const;        // nf4 in host memory (the reference dequantization reads it)
  Nf4Weight op_view() const;         // what the backend's NF4 ops get: the device copy when there is one
  const float* absmax_map() const;   // the double quantization's map in host memory (the checkpoint's or built-in)
  HalfWeight half_view() const;      // a 16-bit 2-D tensor as the 16-bit GEMMs take it
  bool loaded() const { return data != nullptr || is_nf4() || half != nullptr; }
  uint64_t resident_bytes() const;   // 4-bit: codes + scales; 16-bit: numel * 2; else numel * 4
};

// Host staging for uploads to a device backend: 4 Mi values (16 MiB) at a time.
constexpr size_t kWeightStageValues = size_t(1) << 22;

// Names of the tensors the store holds in 4 bits under NF4: the seven
// linears' weights of every decoder block.
bool is_quantized_linear(const std::string& name);
// Resident bytes of one NF4 weight of n values (codes + scales), the formula
// of Nf4Quantized::resident_bytes from the sizes alone.
uint64_t nf4_resident_bytes(int64_t n, int blocksize, bool double_quant);
// Names of the tensors a quantizing store keeps in the checkpoint's 16-bit
// dtype when it is F16/BF16: the embedding and the (untied) lm_head.
bool is_half_table(const std::string& name);
// Whether a store keeps tensor `name` 16-bit when its file stores it F16/BF16:
// the tables (is_half_table: the embedding, which is also the head when tied,
// and an untied lm_head) and, unless quantizing (then they are 4-bit), the
// block linears.
bool keeps_16bit(const std::string& name, bool quantized);

class WeightStore {
 public:
  // expected: the tensors the spec needs, in the engine's fixed order.
  WeightStore(Backend& backend, ThreadPool* pool, std::vector<ParameterInfo> expected,
              const QuantizationOptions& quantization = {});
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  void load(const std::vector<WeightRef>& refs);
  void set(const std::string& name, const float* data, size_t n);  // copies (4-bit: quantizes)
  // fp32 values of a tensor (a 4-bit one dequantized) into out[numel].
  void read(const std::string& name, float* out) const;
  // fp32 values [first, first + n) of a tensor's flattened values into out[n],
  // each exactly as read() gives it (a 4-bit one dequantized from its host
  // codes; a device one through a download of the codes and scales that
  // cover the range, or of that byte range for fp32 / 16-bit ones), so a
  // tensor of any size can be walked through a bounded buffer. Throws naming
  // the tensor when the range runs past its end.
  void read_range(const std::string& name, size_t first, size_t n, float* out) const;
  bool quantized() const { return quant_.enabled(); }
  const QuantizationOptions& quantization() const { return quant_; }
  // Makes the tensor an owned, writable buffer (copying it out of a mapping).
  float* writable(const std::string& name);

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const WeightTensor& get(const std::string& name) const;  // throws naming unknown names
  const std::vector<WeightTensor>& tensors() const { return tensors_; }

  // Throws naming the first tensors no one has provided yet.
  void require_complete() const;
  // Every tensor at its resident size: fp32, 16-bit ones at 2 bytes a value,
  // 4-bit ones at their resident size (not yet loaded ones: fp32, or the
  // 4-bit size the options give them).
  uint64_t bytes() const;
  int64_t params() const;
  uint64_t quantized_bytes() const;
  int64_t quantized_params() const;
  // Changes whenever a data pointer changes, so holders of raw pointers re-bind.
  uint64_t generation() const { return generation_; }

 private:
  WeightTensor& mutable_get(const std::string& name);
  void drop(WeightTensor& t);
  float* alloc_tensor(const WeightTensor& t);  // OutOfMemory names the tensor
  uint16_t* alloc_half(const WeightTensor& t);
  void quantize_into(WeightTensor& t, const float* values);
  void place_nf4(WeightTensor& t);  // device backends: moves t.nf4 into backend memory
  // n values of a file's F32/F16/BF16 bytes at `offset` as fp32 into backend
  // memory dst (a device backend: through bounded host staging).
  void widen_into(const MappedFile& f, uint64_t offset, DType dt, float* dst, size_t n);
  // Copies file bytes into backend memory in bounded chunks, handing each
  // chunk's pages back to the OS once uploaded.
  void upload_from_file(const MappedFile& f, uint64_t offset, void* dst, size_t bytes);
  Backend& backend_;
  ThreadPool* pool_;
  QuantizationOptions quant_;
  bool host_;  // backend_.host_memory(): mapped tensors are used in place
  std::vector<WeightTensor> tensors_;
  std::map<std::string, size_t> index_;
  uint64_t generation_ = 1;
};

}  // namespace ps
