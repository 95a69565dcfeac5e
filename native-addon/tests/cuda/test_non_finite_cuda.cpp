// The chunked NaN / Inf scan (model/non_finite_scan.h) with every tensor in
// CUDA device memory: tests/non_finite_cases.h on a CudaBackend. Device fp32
// tensors, 16-bit tables and trainables are fetched by byte range (a
// download of part of an allocation, cudaMemcpy from an offset pointer), one
// chunk of at most 97 values at a time; 4-bit weights are dequantized from
// their host copy in chunks. Checked: hand-worked counts at chunk, block and
// double quantization group boundaries, the old whole-tensor path's counts,
// the chunks read back equal to the whole read() bit for bit; then the
// engine scenario (a 16-bit NaN in a block linear, Inf in a norm, a NaN in a
// LoRA tensor) names the same tensors and counts as on the CPU.
//
// Under the CPU-side CUDA simulator (test_non_finite_cuda_sim in every CPU
// build) a download whose range runs past its allocation is an error, so an
// off-by-one in the byte ranges fails here. Exits 77 (CTest: skipped)
// without a device.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "check.h"
#include "error.h"
#include "non_finite_cases.h"

namespace fs = std::filesystem;

int main() {
  std::string why;
  if (ps::cuda_device_count(&why) == 0) {
    std::printf("test_non_finite_cuda: SKIPPED: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  const fs::path dir = fs::temp_directory_path() /
                       ("ps_non_finite_cuda_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  try {
    {
      ps::CudaBackend g(0);
      nfcases::store_cases(g, dir);
    }
    nfcases::check_engine_found("cpu", nfcases::engine_found(dir, nullptr));
    nfcases::check_engine_found("cuda", nfcases::engine_found(dir, std::make_unique<ps::CudaBackend>(0)));
  } catch (const ps::Error& e) {
    pstest::fail(__FILE__, __LINE__, std::string("unexpected ps::Error: ") + e.what());
  }
  fs::remove_all(dir);
  return pstest::finish("test_non_finite_cuda");
}
