// A 4-bit NF4 weight copied into a device backend's memory. Under a backend
// whose memory is not host memory (backend.h host_memory()), every pointer of
// the Nf4Weight an op receives must be backend memory, so the weight store
// uploads each quantized weight once (codes, absmax or absmax codes + the
// 256-entry dynamic map + nested scales) and hands the ops this view. No
// host copy stays beside it (a GPU QLoRA run would hold the 4-bit model twice:
// 4.5 GB of host RAM for an 8B model): WeightStore::read downloads the span of
// codes and scales it needs (download_span) and dequantizes that on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "quant/nf4_weight.h"

namespace ps {

// Values [first, first + n) of a device 4-bit weight, in host memory as a
// 4-bit weight of its own (1 x length): the whole blocks that cover them,
// starting at the first one's nested group under double quantization (else at
// its block), so a value at index i of the weight is value i - start here, in
// the same block position, group position and nibble, and dequantizes to the
// same bits (nf4_dequantize_range).
struct HostNf4Span {
  int64_t start = 0;   // the weight's flat index of this span's first value
  int64_t length = 0;  // values in the span
  int blocksize = 64;
  int nested_blocksize = 256;
  float nested_offset = 0.0f;
  std::vector<uint8_t> codes;
  std::vector<float> absmax;          // without double quantization
  std::vector<uint8_t> absmax_codes;  // with it
  std::vector<float> nested_absmax;   // with it
  // absmax_map: the double quantization's 256-entry map in host memory (the
  // checkpoint's own or the built-in one; unused without it).
  Nf4Weight view(const float* absmax_map) const;
};

class DeviceNf4 {
 public:
  // Uploads every array `host` points at. Throws (OutOfMemory from the
  // backend) with nothing left allocated.
  DeviceNf4(Backend& be, const Nf4Weight& host);
  ~DeviceNf4();
  DeviceNf4(const DeviceNf4&) = delete;
  DeviceNf4& operator=(const DeviceNf4&) = delete;

  const Nf4Weight& view() const { return view_; }
  // Downloads the span covering values [first, first + n) (HostNf4Span);
  // throws naming the range when it runs past the weight's end.
  HostNf4Span download_span(int64_t first, int64_t n) const;

 private:
  template <typename T>
  const T* upload(const T* host, size_t n);
  void release_all();
  Backend& be_;
  Nf4Weight view_;
  std::vector<void*> owned_;
};

}  // namespace ps
