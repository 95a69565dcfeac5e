#include "model/device_nf4.h"

namespace ps {

template <typename T>
const T* DeviceNf4::upload(const T* host, size_t n) {
  void* p = be_.alloc(n * sizeof(T));
  owned_.push_back(p);
  be_.upload(p, host, n * sizeof(T));
  return static_cast<const T*>(p);
}

DeviceNf4::DeviceNf4(Backend& be, const Nf4Weight& host) : be_(be), view_(host) {
  try {
    view_.codes = upload(host.codes, static_cast<size_t>((host.numel() + 1) / 2));
    const size_t blocks = static_cast<size_t>(host.blocks());
    if (host.double_quantized()) {
      view_.absmax_codes = upload(host.absmax_codes, blocks);
      view_.absmax_map = upload(host.absmax_map, 256);
      const size_t nested = (blocks + host.nested_blocksize - 1) / host.nested_blocksize;
      view_.nested_absmax = upload(host.nested_absmax, nested);
    } else {
      view_.absmax = upload(host.absmax, blocks);
    }
  } catch (...) {
    release_all();
    throw;
  }
}

DeviceNf4::~DeviceNf4() { release_all(); }

void DeviceNf4::release_all() {
  for (void* p : owned_) be_.release(p);
  owned_.clear();
}

}  // namespace ps
