// The host memory a GPU run's weights take, measured: a BF16 checkpoint loaded
// with NF4 quantization into a store on a backend whose memory is not host
// memory (tests/device_sim_backend.h, the situation of a GPU: its memory is a
// separate mapping, not the heap). Every heap allocation of this process is
// counted (operator new below), so the test sees what the load holds on the
// host:
//  - at its peak, at most what the estimate says a GPU run's load holds
//    (DeviceMemoryEstimate::host_load_bytes), and at least the fp32 copy of
//    the largest linear it quantizes (so the bound is not vacuous);
//  - once loaded, no 4-bit copy of the model: before, every 4-bit weight kept
//    its host codes beside the device copy (here 1.4 MiB; an 8B model's 4.5 GB).
// The values read back are the CPU store's, bit for bit.
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "check.h"
#include "device_sim_backend.h"
#include "memory_estimate.h"
#include "model/weights.h"
#include "rng.h"

namespace {
std::atomic<long long> g_live{0}, g_peak{0};
void count_alloc(void* p) {
  const long long now = g_live += static_cast<long long>(malloc_usable_size(p));
  long long peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}
void* counted_new(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  count_alloc(p);
  return p;
}
void counted_delete(void* p) {
  if (!p) return;
  g_live -= static_cast<long long>(malloc_usable_size(p));
  std::free(p);
}
}  // namespace

void* operator new(size_t n) { return counted_new(n); }
void* operator new[](size_t n) { return counted_new(n); }
void operator delete(void* p) noexcept { counted_delete(p); }
void operator delete[](void* p) noexcept { counted_delete(p); }
void operator delete(void* p, size_t) noexcept { counted_delete(p); }
void operator delete[](void* p, size_t) noexcept { counted_delete(p); }

namespace {
namespace fs = std::filesystem;

// A Llama shape whose largest block linear (gate/up/down, 768 x 256) is the
// largest quantized weight; the embedding (2000 x 256) stays 16-bit (uploaded
// as stored), the norms (256 values) are widened to fp32 through the stage.
ps::ModelSpec spec() {
  ps::ModelSpec s;
  s.architecture = "LlamaForCausalLM";
  s.vocab_size = 2000;
  s.hidden_size = 256;
  s.intermediate_size = 768;
  s.num_layers = 2;
  s.num_heads = 8;
  s.num_kv_heads = 4;
  s.head_dim = 32;
  s.rms_norm_eps = 1e-5f;
  s.rope_theta = 10000.0f;
  s.max_position_embeddings = 128;
  return s;
}

uint16_t bf16_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);  // round to nearest even
}

// Every tensor the spec needs, BF16, one after another in one file.
std::vector<ps::WeightRef> write_checkpoint(const ps::ModelSpec& s, const fs::path& file) {
  std::vector<ps::WeightRef> refs;
  std::ofstream out(file, std::ios::binary);
  ps::Rng rng(11);
  uint64_t offset = 0;
  for (const auto& info : ps::expected_weights(s)) {
    size_t n = 1;
    for (auto d : info.shape) n *= static_cast<size_t>(d);
    const bool norm = info.name.find("norm") != std::string::npos;
    std::vector<uint16_t> h(n);
    for (auto& x : h) x = bf16_of(static_cast<float>(norm ? 1.0 + 0.1 * rng.normal() : 0.05 * rng.normal()));
    out.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(n * 2));
    refs.push_back({info.name, file.string(), offset, ps::DType::BF16, info.shape, std::nullopt});
    offset += n * 2;
  }
  return refs;
}

}  // namespace

int main() {
  const ps::ModelSpec s = spec();
  const fs::path dir = fs::temp_directory_path() / ("ps_load_host_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::vector<ps::WeightRef> refs = write_checkpoint(s, dir / "model.bin");
  ps::QuantizationOptions q;
  q.type = ps::QuantizationOptions::Type::Nf4;

  ps::MemoryEstimateOptions o;
  o.method = ps::Method::Lora;
  o.lora.targets = ps::lora_target_names();
  o.quantization = q;
  o.weight_dtype = ps::DType::BF16;
  const uint64_t estimate = ps::estimate_device_memory(s, o, "cuda", "fp32").host_load_bytes;
  const uint64_t largest_linear = 768ull * 256;
  CHECK(estimate == largest_linear * 4 + ps::nf4_resident_bytes(largest_linear, 64, true) + largest_linear / 64 * 4 +
                        256ull * 4);  // the stage holds the largest fp32-held tensor, a norm, widened

  std::vector<float> expect;
  uint64_t quantized_bytes = 0;
  {
    ps::CpuBackend cpu(1);
    ps::WeightStore store(cpu, nullptr, ps::expected_weights(s), q);
    store.load(refs);
    quantized_bytes = store.quantized_bytes();
    for (const auto& t : store.tensors())
      if (t.is_nf4()) {
        std::vector<float> v(t.numel);
        store.read(t.name, v.data());
        expect.insert(expect.end(), v.begin(), v.end());
      }
  }

  devsim::DeviceSimBackend sim(1);
  ps::WeightStore store(sim, nullptr, ps::expected_weights(s), q);
  const long long before = g_live.load();
  g_peak.store(before);
  store.load(refs);
  const long long peak = g_peak.load() - before, after = g_live.load() - before;
  std::printf("host heap during a 4-bit load to the device: peak +%lld bytes (estimate %llu), after +%lld; "
              "the model's 4-bit weights are %llu bytes\n",
              peak, static_cast<unsigned long long>(estimate), after, static_cast<unsigned long long>(quantized_bytes));
  // Bookkeeping beside the buffers (malloc's rounding, the store's map nodes, a file's mapping record): a few KiB.
  const long long slack = 16 << 10;
  CHECK(peak <= static_cast<long long>(estimate) + slack);
  CHECK(peak >= static_cast<long long>(largest_linear * 4));
  CHECK(after < static_cast<long long>(quantized_bytes) / 20);

  std::vector<float> got;
  for (const auto& t : store.tensors())
    if (t.is_nf4()) {
      CHECK(t.nf4 == nullptr && t.nf4_device != nullptr);
      std::vector<float> v(t.numel);
      store.read(t.name, v.data());
      got.insert(got.end(), v.begin(), v.end());
    }
  CHECK(!got.empty() && got.size() == expect.size() &&
        std::memcmp(got.data(), expect.data(), got.size() * sizeof(float)) == 0);
  fs::remove_all(dir);
  return pstest::finish("test_device_load_host_memory");
}
