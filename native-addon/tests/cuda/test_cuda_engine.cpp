// Whole training runs on the GPU (EngineOptions.device = "cuda") against the
// CPU engine: the scenarios of tests/engine_scenarios.h (LoRA with dropout,
// QLoRA with and without double quantization and checkpointing, prefix
// tuning with projection, prompt tuning, full fine-tuning; two optimizer
// steps, evaluation, getTensor, optimizer state, generation each). The
// plumbing itself (no host access to device memory) is proven on the CPU by
// test_device_plumbing; this test measures how far CUDA's fp32 arithmetic
// (other summation orders) moves the results. Exits 77 (CTest: skipped)
// without a device.
//
// Tolerances are design values until the first GPU run confirms them: every
// comparison prints worst/limit (< 1 passes).
//  - losses and gradient norms: relative 1e-4 (fp32 sums of a few hundred
//    terms in another order);
//  - arrays: max |gpu - cpu| <= 2e-3 * max |cpu| (gradients, logits, Adam
//    moments and updated tensors; AdamW's m / sqrt(v) turns tiny gradient
//    differences into lr-sized steps, hence the looser array bound).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "backend/cuda/cuda_backend.h"
#include "check.h"
#include "engine_scenarios.h"

namespace fs = std::filesystem;
using namespace scenarios;

namespace {

constexpr double kNumberRel = 1e-4;
constexpr double kArrayRel = 2e-3;

void check_ratio(const std::string& what, double worst, double limit) {
  const double ratio = limit > 0 ? worst / limit : (worst == 0 ? 0 : INFINITY);
  std::printf("  %-70s worst/limit %.3g\n", what.c_str(), ratio);
  if (!(ratio < 1)) pstest::fail(__FILE__, __LINE__, what + ": beyond tolerance (worst/limit " + std::to_string(ratio) + ")");
}

void compare(const Scenario& sc) {
  std::printf("%s\n", sc.name.c_str());
  const Outcome cpu = run(sc, nullptr);
  Scenario on_gpu = sc;
  on_gpu.options.device = "cuda";
  const Outcome gpu = run(on_gpu, nullptr);
  CHECK(cpu.numbers.size() == gpu.numbers.size());
  CHECK(cpu.arrays.size() == gpu.arrays.size());
  for (size_t i = 0; i < cpu.numbers.size() && i < gpu.numbers.size(); ++i)
    check_ratio("number " + std::to_string(i), std::fabs(gpu.numbers[i] - cpu.numbers[i]),
                kNumberRel * std::max(std::fabs(cpu.numbers[i]), 1e-12));
  for (const auto& kv : cpu.arrays) {
    auto it = gpu.arrays.find(kv.first);
    if (it == gpu.arrays.end() || it->second.size() != kv.second.size()) {
      pstest::fail(__FILE__, __LINE__, sc.name + ": \"" + kv.first + "\" missing or of another size on the GPU");
      continue;
    }
    double scale = 0, worst = 0;
    for (size_t i = 0; i < kv.second.size(); ++i) {
      scale = std::max(scale, std::fabs(static_cast<double>(kv.second[i])));
      const double d = std::fabs(static_cast<double>(it->second[i]) - kv.second[i]);
      worst = std::isnan(d) ? INFINITY : std::max(worst, d);
    }
    check_ratio(kv.first, worst, kArrayRel * std::max(scale, 1e-12));
  }
}

}  // namespace

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_cuda_engine: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  const fs::path dir = fs::temp_directory_path() /
                       ("ps_cuda_engine_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  try {
    for (const Scenario& sc : all(dir)) compare(sc);
  } catch (const std::exception& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
  }
  fs::remove_all(dir);
  return pstest::finish("test_cuda_engine");
}
