// make_backend's choices that every build can check: devices and precisions
// by name, the CPU's answer to each precision, and the messages that say
// what to use instead. (The CUDA side, "auto" and "bf16" on a GPU, is in
// tests/cuda/.)
#include <memory>
#include <string>

#include "backend_factory.h"
#include "check.h"
#include "error.h"

namespace {

std::string error_of(const std::string& device, const std::string& precision) {
  try {
    ps::make_backend(device, 1, precision);
  } catch (const ps::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

}  // namespace

int main() {
  // The CPU computes in fp32: "fp32" and "auto" give the CPU backend.
  CHECK(ps::make_backend("cpu", 1, "fp32")->name() == "cpu");
  CHECK(ps::make_backend("cpu", 1, "auto")->name() == "cpu");
  CHECK(ps::make_backend("", 1)->name() == "cpu");  // the default precision is fp32

  // bf16 on the CPU is refused with what to use instead.
  const std::string bf16_cpu = error_of("cpu", "bf16");
  CHECK(contains(bf16_cpu, "precision bf16 needs a CUDA GPU"));
  CHECK(contains(bf16_cpu, "use precision fp32 or auto"));

  // Unknown names say which ones exist; the precision is checked first, so a
  // typo is reported even where the device would be fine.
  CHECK(contains(error_of("cpu", "fp16"), "unknown precision \"fp16\": use fp32, bf16 or auto"));
  CHECK(contains(error_of("cpu", "BF16"), "unknown precision \"BF16\""));
  CHECK(contains(error_of("gpu", "fp32"), "unknown device \"gpu\""));
  CHECK(contains(error_of("cuda:x", "auto"), "unknown device \"cuda:x\""));

  // Without the CUDA backend a GPU is refused whatever the precision.
  if (!ps::have_cuda_backend()) {
    CHECK(contains(error_of("cuda", "auto"), "this build has no CUDA backend"));
    CHECK(contains(error_of("cuda:1", "bf16"), "this build has no CUDA backend"));
  }
  return pstest::finish("test_backend_factory");
}
