// A 4-bit weight under a backend whose memory the host cannot touch (the
// situation of a GPU; tests/device_sim_backend.h): the store keeps only the
// device copy (no host codes: a GPU QLoRA run held the 4-bit model twice, in
// GPU memory and in host RAM), and reads it back by downloading the codes and
// scales that cover a range. Every read must give the bits the same weight
// gives on the CPU backend (host codes, nf4_dequantize_range /
// nf4_dequantize_reference), for ranges starting and ending anywhere: mid-byte
// (odd indices), mid-block, on and across the double quantization's nested
// groups of 256 blocks, the last short block of an odd-sized weight.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "device_sim_backend.h"
#include "error.h"
#include "model/weights.h"

namespace {

struct Shape {
  const char* name;
  int64_t rows, cols;
};

// 37 x 129 (4,773 values: odd, 75 blocks of 64, one nested group) and
// 130 x 257 (33,410 values: 523 blocks, three nested groups, the last short).
const Shape kShapes[] = {{"model.layers.0.mlp.up_proj.weight", 37, 129},
                         {"model.layers.0.mlp.down_proj.weight", 130, 257}};

std::vector<float> values_of(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> v(static_cast<size_t>(s.rows * s.cols));
  for (auto& x : v) x = normal(rng);
  // a few large values, so blocks' absmax differ widely (the nested scales matter)
  for (size_t i = 0; i < v.size(); i += 997) v[i] = (i % 2 ? 1.0f : -1.0f) * (0.5f + 0.001f * (i % 13));
  return v;
}

std::vector<ps::ParameterInfo> expected() {
  std::vector<ps::ParameterInfo> e;
  for (const auto& s : kShapes) e.push_back({s.name, {s.rows, s.cols}, false});
  return e;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// The ranges a read may ask for: every start in the first 70 values and around
// each nested group boundary, with lengths of 1, 2, 63, 64, 65, 300 and to the end.
std::vector<std::pair<size_t, size_t>> ranges_of(size_t numel, int blocksize) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < 70 && i < numel; ++i) starts.push_back(i);
  const size_t group = static_cast<size_t>(blocksize) * 256;
  for (size_t g = group; g < numel; g += group)
    for (size_t d : {size_t(0), size_t(1), size_t(2), size_t(63)}) {
      if (g - d < numel) starts.push_back(g - d);
      if (g + d < numel) starts.push_back(g + d);
    }
  starts.push_back(numel - 1);
  std::vector<std::pair<size_t, size_t>> r;
  for (size_t s : starts)
    for (size_t n : {size_t(1), size_t(2), size_t(63), size_t(64), size_t(65), size_t(300), numel - s})
      if (n >= 1 && s + n <= numel) r.push_back({s, n});
  r.push_back({numel, 0});
  return r;
}

void check(int blocksize, bool double_quant) {
  ps::QuantizationOptions q;
  q.type = ps::QuantizationOptions::Type::Nf4;
  q.blocksize = blocksize;
  q.double_quant = double_quant;
  ps::CpuBackend cpu_be(1);
  ps::WeightStore cpu(cpu_be, nullptr, expected(), q);
  devsim::DeviceSimBackend sim_be(1);
  ps::WeightStore dev(sim_be, nullptr, expected(), q);
  uint32_t seed = 7;
  size_t reads = 0;
  for (const auto& s : kShapes) {
    const std::vector<float> v = values_of(s, seed++);
    cpu.set(s.name, v.data(), v.size());
    dev.set(s.name, v.data(), v.size());
    const ps::WeightTensor& ct = cpu.get(s.name);
    const ps::WeightTensor& dt = dev.get(s.name);
    // the CPU keeps its host codes; the device store only its device copy, of the same size
    CHECK(ct.nf4 != nullptr && ct.nf4_device == nullptr);
    CHECK(dt.nf4 == nullptr && dt.nf4_device != nullptr && dt.is_nf4() && dt.loaded());
    CHECK(dt.resident_bytes() == ct.resident_bytes());
    CHECK(dt.resident_bytes() == ps::nf4_resident_bytes(s.rows * s.cols, blocksize, double_quant));
    const size_t numel = v.size();
    // whole reads: the reference dequantization on the host codes
    std::vector<float> a(numel), b(numel);
    cpu.read(s.name, a.data());
    dev.read(s.name, b.data());
    CHECK(same_bits(a.data(), b.data(), numel));
    // and the values are really the weight's, 4-bit rounded (not zeros or another tensor's): each
    // within the widest NF4 code gap's half (0.16) of its block's absmax, large ones with their sign;
    // double quantization adds its 8-bit absmax's error (up to ~20% for a small block in a group of
    // large ones: the outliers above)
    const float tol = double_quant ? 0.4f : 0.17f;
    size_t wrong = 0;
    for (size_t b0 = 0; b0 < numel; b0 += blocksize) {
      const size_t b1 = std::min(numel, b0 + blocksize);
      float m = 0;
      for (size_t i = b0; i < b1; ++i) m = std::max(m, std::fabs(v[i]));
      for (size_t i = b0; i < b1; ++i)
        if (std::fabs(a[i] - v[i]) > tol * m || (std::fabs(v[i]) >= 0.5f * m && (a[i] > 0) != (v[i] > 0))) ++wrong;
    }
    if (wrong) std::printf("%s: %zu of %zu values off\n", s.name, wrong, numel);
    CHECK(wrong == 0);
    for (const auto& [first, n] : ranges_of(numel, blocksize)) {
      std::vector<float> x(n + 1, -7.0f), y(n + 1, -7.0f);
      cpu.read_range(s.name, first, n, x.data());
      dev.read_range(s.name, first, n, y.data());
      if (!same_bits(x.data(), y.data(), n + 1) || !same_bits(x.data(), a.data() + first, n))
        pstest::fail(__FILE__, __LINE__, std::string(s.name) + ": range [" + std::to_string(first) + ", " +
                                             std::to_string(first + n) + ") differs");
      CHECK(y[n] == -7.0f);  // nothing written past the range
      ++reads;
    }
    // a range past the end names the tensor
    std::vector<float> x(2);
    bool threw = false;
    try {
      dev.read_range(s.name, numel - 1, 2, x.data());
    } catch (const ps::Error& e) {
      threw = std::string(e.what()).find(s.name) != std::string::npos;
    }
    CHECK(threw);
  }
  // writing a weight held in 4 bits is refused on either side
  bool refused = false;
  try {
    dev.writable(kShapes[0].name);
  } catch (const ps::Error& e) {
    refused = std::string(e.what()).find("held in 4 bits") != std::string::npos;
  }
  CHECK(refused);
  CHECK(dev.quantized_bytes() == cpu.quantized_bytes() && dev.bytes() == cpu.bytes());
  std::printf("blocksize %d, double quant %d: %zu ranges bit-identical to the host codes' dequantization\n", blocksize,
              double_quant ? 1 : 0, reads);
}

}  // namespace

int main() {
  check(64, true);
  check(64, false);
  check(128, true);
  check(256, false);
  return pstest::finish("test_device_nf4_read");
}
