#include "model/device_nf4.h"

#include <algorithm>
#include <string>

#include "error.h"

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

HostNf4Span DeviceNf4::download_span(int64_t first, int64_t n) const {
  const int64_t numel = view_.numel();
  if (first < 0 || n < 0 || first > numel || n > numel - first)
    throw Error("4-bit weight of " + std::to_string(numel) + " values: cannot read [" + std::to_string(first) + ", " +
                std::to_string(first + n) + ")");
  HostNf4Span s;
  s.blocksize = view_.blocksize;
  s.nested_blocksize = view_.nested_blocksize;
  s.nested_offset = view_.nested_offset;
  if (n == 0) return s;
  const int64_t bs = view_.blocksize;
  const bool dq = view_.double_quantized();
  // Start where the first value's scales start: its nested group (double
  // quantization) or its block, both at an even index (the blocksize is a
  // power of two >= 64), so no code byte is split.
  const int64_t group = dq ? bs * view_.nested_blocksize : bs;
  s.start = first / group * group;
  const int64_t end = std::min(numel, (first + n + bs - 1) / bs * bs);
  s.length = end - s.start;
  const int64_t b0 = s.start / bs, b1 = (end + bs - 1) / bs;
  auto fetch = [&](auto& dst, const auto* src, int64_t from, int64_t count) {
    dst.resize(static_cast<size_t>(count));
    be_.download(dst.data(), src + from, static_cast<size_t>(count) * sizeof(dst[0]));
  };
  fetch(s.codes, view_.codes, s.start / 2, (end + 1) / 2 - s.start / 2);
  if (dq) {
    fetch(s.absmax_codes, view_.absmax_codes, b0, b1 - b0);
    const int64_t g0 = b0 / view_.nested_blocksize, g1 = (b1 + view_.nested_blocksize - 1) / view_.nested_blocksize;
    fetch(s.nested_absmax, view_.nested_absmax, g0, g1 - g0);
  } else {
    fetch(s.absmax, view_.absmax, b0, b1 - b0);
  }
  return s;
}

Nf4Weight HostNf4Span::view(const float* absmax_map) const {
  Nf4Weight w;
  w.rows = 1;
  w.cols = length;
  w.blocksize = blocksize;
  w.codes = codes.data();
  if (!absmax_codes.empty()) {
    w.absmax_codes = absmax_codes.data();
    w.absmax_map = absmax_map;
    w.nested_absmax = nested_absmax.data();
    w.nested_blocksize = nested_blocksize;
    w.nested_offset = nested_offset;
  } else {
    w.absmax = absmax.data();
  }
  return w;
}

void DeviceNf4::release_all() {
  for (void* p : owned_) be_.release(p);
  owned_.clear();
}

}  // namespace ps
