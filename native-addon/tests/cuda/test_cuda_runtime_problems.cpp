// What the CUDA backend says and does on machines other than the one at hand:
// a driver too old for the engine's CUDA runtime, no driver at all, a Turing
// GPU (no bf16 tensor cores), and a build whose code has no architecture 80+
// running on a newer GPU (its tensor-core kernels are left out and trap).
// Each must be a sentence that says what to do, never a kernel launch that
// fails or does nothing. The simulator presents those machines
// (sim_control.h); on a real GPU the test checks what it can of the machine
// it is on: this build's kernels carry code for architecture 80 or later
// wherever the GPU has bf16 tensor cores.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_bf16.h"
#include "check.h"
#include "error.h"
#ifdef PS_CUDA_SIM
#include <cuda_runtime.h>
#include <unistd.h>

#include <filesystem>

#include "backend/cuda/sim/sim_control.h"
#include "engine_scenarios.h"
#endif

namespace {

[[maybe_unused]] bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The message a call throws ("" when it does not).
template <typename F>
std::string thrown(F&& f) {
  try {
    f();
  } catch (const ps::Error& e) {
    return e.what();
  }
  return "";
}

#ifdef PS_CUDA_SIM
namespace cudasim = ps::cudasim;

void test_driver_problems() {
  std::printf("drivers\n");
  std::string why;
  CHECK(ps::cuda_device_count(&why) == 1);
  CHECK(why.empty());

  cudasim::set_driver_version(0);  // libcuda.so.1 absent: the runtime's own code for it
  CHECK(ps::cuda_device_count(&why) == 0);
  CHECK(why ==
        "no NVIDIA driver is installed (cudaErrorInsufficientDriver): install the NVIDIA driver for this GPU "
        "(nvidia-smi must list it)");
  CHECK(contains(thrown([] { ps::CudaBackend be(0); }), why));

  // The same sentence electron/engine/device.test.ts passes on to the user.
  cudasim::set_driver_version(12040);
  CHECK(ps::cuda_device_count(&why) == 0);
  std::printf("  %s\n", why.c_str());
  CHECK(why ==
        "the NVIDIA driver supports CUDA 12.4, older than the CUDA 13.0 runtime this engine is built with "
        "(cudaErrorInsufficientDriver): update the NVIDIA driver to one that supports CUDA 13.0 or later "
        "(nvidia-smi shows the CUDA version a driver supports)");
  CHECK(cudaGetLastError() == cudaSuccess);  // the failed count left no error behind

  cudasim::set_driver_version(13000);
  CHECK(ps::cuda_device_count(&why) == 1);
}

// A Turing card: bf16 is refused with the reason, and the engine trains in
// fp32 there (every scenario's losses as the CPU's, within fp32 sums' reach).
void test_turing() {
  std::printf("a Turing GPU (compute capability 7.5)\n");
  cudasim::set_compute_capability(7, 5);
  {
    ps::CudaBackend be(0);
    CHECK(be.device_info().major == 7 && be.device_info().minor == 5);
    const std::string refused = thrown([&] { be.set_gemm_precision(ps::CudaBackend::GemmPrecision::Bf16); });
    std::printf("  %s\n", refused.c_str());
    CHECK(contains(refused, "precision bf16: "));
    CHECK(contains(refused, "(compute capability 7.5) has no bf16 tensor cores"));
    CHECK(contains(refused, "use precision fp32"));
    CHECK(be.precision_description() == "fp32");
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ps_cuda_turing_" + std::to_string(getpid()));
  fs::create_directories(dir);
  int compared = 0;
  for (const scenarios::Scenario& sc : scenarios::all(dir)) {
    const scenarios::Outcome gpu = scenarios::run(sc, std::make_unique<ps::CudaBackend>(0));
    const scenarios::Outcome cpu = scenarios::run(sc, nullptr);
    CHECK(gpu.numbers.size() == cpu.numbers.size());
    for (size_t i = 0; i < gpu.numbers.size() && i < cpu.numbers.size(); ++i) {
      if (!std::isfinite(gpu.numbers[i])) CHECK(std::isfinite(gpu.numbers[i]));
      CHECK_CLOSE(gpu.numbers[i], cpu.numbers[i], 1e-4, 1e-5);
    }
    ++compared;
  }
  std::printf("  %d scenarios in fp32, losses as the CPU's\n", compared);
  CHECK(compared >= 5);
  fs::remove_all(dir);
  cudasim::set_compute_capability(9, 0);
}

// A build for architecture 75 alone on an Ampere+ GPU: the driver runs its
// compute_75 code, where the tensor-core kernels are compiled out.
void test_code_without_tensor_cores() {
  std::printf("a build without architecture 80+ on a Hopper GPU\n");
  ps::CudaBackend be(0);
  CHECK(ps::cuda::bf16_unavailable_reason(be.device_info()).empty());
  cudasim::set_code_arch(75);
  const std::string refused = thrown([&] { be.set_gemm_precision(ps::CudaBackend::GemmPrecision::Bf16); });
  std::printf("  %s\n", refused.c_str());
  CHECK(contains(refused, "precision bf16: this engine runs on "));
  CHECK(contains(refused, "(compute capability 9.0) as compute_75 code"));
  CHECK(contains(refused, "rebuild it with the default CMAKE_CUDA_ARCHITECTURES"));
  CHECK(be.precision_description() == "fp32");
  cudasim::set_code_arch(90);
  CHECK(thrown([&] { be.set_gemm_precision(ps::CudaBackend::GemmPrecision::Bf16); }).empty());
}
#endif

}  // namespace

int main() {
  try {
#ifdef PS_CUDA_SIM
    test_driver_problems();
    test_turing();
    test_code_without_tensor_cores();
#else
    std::string why;
    if (ps::cuda_device_count(&why) == 0) {
      std::printf("test_cuda_runtime_problems: skipped: no CUDA device (%s)\n", why.c_str());
      return 77;
    }
    ps::CudaBackend be(0);
    const std::string bf16 = ps::cuda::bf16_unavailable_reason(be.device_info());
    std::printf("%s: bf16 %s\n", be.device_info().name.c_str(), bf16.empty() ? "available" : bf16.c_str());
    // Every GPU with bf16 tensor cores has code for them in this build (the default architectures).
    CHECK(bf16.empty() == ps::cuda::has_bf16_tensor_cores(be.device_info()));
#endif
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  return pstest::finish("test_cuda_runtime_problems");
}
