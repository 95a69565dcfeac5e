// A 4-bit NF4 weight copied into a device backend's memory. Under a backend
// whose memory is not host memory (backend.h host_memory()), every pointer of
// the Nf4Weight an op receives must be backend memory, so the weight store
// uploads each quantized weight once (codes, absmax or absmax codes + the
// 256-entry dynamic map + nested scales) and hands the ops this view. The
// host Nf4Quantized stays beside it for WeightStore::read (the reference
// dequantization).
#pragma once

#include <vector>

#include "backend.h"

namespace ps {

class DeviceNf4 {
 public:
  // Uploads every array `host` points at. Throws (OutOfMemory from the
  // backend) with nothing left allocated.
  DeviceNf4(Backend& be, const Nf4Weight& host);
  ~DeviceNf4();
  DeviceNf4(const DeviceNf4&) = delete;
  DeviceNf4& operator=(const DeviceNf4&) = delete;

  const Nf4Weight& view() const { return view_; }

 private:
  template <typename T>
  const T* upload(const T* host, size_t n);
  void release_all();
  Backend& be_;
  Nf4Weight view_;
  std::vector<void*> owned_;
};

}  // namespace ps
