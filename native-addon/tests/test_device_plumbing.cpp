// The engine on a backend whose memory the host cannot touch (the situation
// of a GPU), checked on the CPU: tests/device_sim_backend.h computes with the
// CPU backend but keeps its memory unmapped outside its own calls and refuses
// host pointers as op arguments. Whole training runs through it must give the
// plain CPU engine's results BIT FOR BIT:
//  - LoRA (with dropout) on a checkpoint mixing aligned / misaligned F32, BF16
//    and F16 tensors (mapped in place on the CPU, uploaded on a device);
//  - QLoRA (NF4, with and without double quantization, with gradient
//    checkpointing) whose embedding and lm_head stay 16-bit (one misaligned);
//  - prefix tuning with the projection MLP (its tanh runs on the host);
//  - prompt tuning (the soft prompt copied into the rows, and run through
//    the model to start generation);
//  - full fine-tuning (weights made writable from the mapping), SGD;
// (the unquantized runs compute with their BF16 / F16 block linears kept
// 16-bit in device memory: backend.h half_gemm_nt / half_gemm_nn);
// each with two optimizer steps, evaluation, getTensor of every base tensor
// (4-bit and 16-bit ones too), the optimizer state and generation.
// Every scenario runs twice: as is, and with the bf16 activation storage of
// the CUDA backend's bf16 precision on both sides (its 16-bit copies and
// working set in device memory, reached only by backend ops).
// Also: the backend factory's errors and list_devices() without CUDA.
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

#include "backend_factory.h"
#include "check.h"
#include "device_sim_backend.h"
#include "engine_scenarios.h"
#include "error.h"

using namespace tiny;
namespace fs = std::filesystem;

namespace {

using namespace scenarios;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The CPU backend with the bf16 activation storage of the CUDA backend's bf16
// precision (its GEMMs stay fp32): the reference of a simulated device that keeps it too.
class CpuWithBf16Activations final : public ps::CpuBackend {
 public:
  using CpuBackend::CpuBackend;
  bool bf16_activations() const override { return true; }
};

// bf16_activations: both sides keep bf16 activations (the 16-bit copies and
// their working set must live in device memory and reach only backend ops).
void compare(const Scenario& sc, bool bf16_activations) {
  const Outcome cpu = run(sc, bf16_activations ? std::make_unique<CpuWithBf16Activations>(kThreads) : nullptr);
  auto sim = std::make_unique<devsim::DeviceSimBackend>(kThreads, size_t(1) << 31, bf16_activations);
  CHECK(!sim->host_memory());
  const size_t half_calls = devsim::half_gemm_calls();
  const Outcome dev = run(sc, std::move(sim));
  // The BF16 / F16 block linears of the unquantized LoRA and prefix scenarios stay 16-bit in device memory.
  if (sc.name == "lora" || sc.name.rfind("prefix", 0) == 0)
    CHECK(devsim::half_gemm_calls() > half_calls);
  CHECK(cpu.numbers.size() == dev.numbers.size());
  for (size_t i = 0; i < cpu.numbers.size() && i < dev.numbers.size(); ++i)
    if (std::memcmp(&cpu.numbers[i], &dev.numbers[i], sizeof(double)) != 0)
      pstest::fail(__FILE__, __LINE__,
                   sc.name + ": number " + std::to_string(i) + " differs: cpu " + std::to_string(cpu.numbers[i]) +
                       ", device " + std::to_string(dev.numbers[i]));
  CHECK(cpu.arrays.size() == dev.arrays.size());
  for (const auto& kv : cpu.arrays) {
    auto it = dev.arrays.find(kv.first);
    if (it == dev.arrays.end() || !same_bits(kv.second, it->second))
      pstest::fail(__FILE__, __LINE__, sc.name + ": \"" + kv.first + "\" differs between cpu and device");
  }
  // The run must have done something: a loss, gradients, a changed tensor.
  CHECK(cpu.numbers.size() > 4 && cpu.numbers[0] > 0 && cpu.numbers[1] > 0);
  // and with bf16 activations, rounded them (the first loss moves)
  if (bf16_activations) CHECK(run(sc, nullptr).numbers[0] != cpu.numbers[0]);
  CHECK(cpu.arrays.size() > 4);
  std::printf("%s%s: %zu numbers and %zu arrays bit-identical on the simulated device\n", sc.name.c_str(),
              bf16_activations ? " (bf16 activations)" : "", cpu.numbers.size(), cpu.arrays.size());
}

void expect_error(const std::function<void()>& f, const std::string& want) {
  try {
    f();
    pstest::fail(__FILE__, __LINE__, "expected an error containing \"" + want + "\"");
  } catch (const ps::Error& e) {
    if (std::string(e.what()).find(want) == std::string::npos)
      pstest::fail(__FILE__, __LINE__, "error \"" + std::string(e.what()) + "\" lacks \"" + want + "\"");
  }
}

void test_factory() {
  const ps::ModelSpec s = spec(Variant::Llama);
  ps::EngineOptions o;
  o.threads = 1;
  CHECK(o.device == "cpu");
  CHECK(ps::make_backend("cpu", 1)->host_memory());
  CHECK(ps::make_backend("cpu", 1)->name() == "cpu");
  o.device = "tpu";
  expect_error([&] { ps::Engine e(s, o); }, "unknown device \"tpu\"");
  o.device = "cuda:x";
  expect_error([&] { ps::Engine e(s, o); }, "unknown device");
  if (!ps::have_cuda_backend()) {
    CHECK(ps::list_devices().empty());
    o.device = "cuda";
    expect_error([&] { ps::Engine e(s, o); },
                 "this build has no CUDA backend: rebuild with PEFT_STUDIO_CUDA=1 (needs the CUDA toolkit) or use "
                 "device cpu");
  } else {
    // A CUDA build: every listed device reports a name and memory; a missing one is a clear error.
    // (one that cannot report itself is listed in its place with the reason instead)
    for (const auto& d : ps::list_devices()) CHECK(!d.error.empty() || (!d.name.empty() && d.total_bytes > 0 && d.major >= 1));
    o.device = "cuda:" + std::to_string(ps::list_devices().size() + 7);
    expect_error([&] { ps::Engine e(s, o); }, "cuda");
  }
}

}  // namespace

int main() {
  const fs::path dir =
      fs::temp_directory_path() /
      ("ps_devsim_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  try {
    test_factory();
    for (const scenarios::Scenario& sc : scenarios::all(dir))
      for (bool bf16_activations : {false, true}) compare(sc, bf16_activations);
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  fs::remove_all(dir);
  return pstest::finish("test_device_plumbing");
}
