#include "backend_factory.h"

#include <cstdlib>
#include <exception>
#include <utility>

#include "backend/cpu/cpu_backend.h"
#include "error.h"
#ifdef PS_HAVE_CUDA
#include "backend/cuda/cuda_factory.h"
#endif

namespace ps {

namespace {
// "cuda" -> 0, "cuda:N" -> N; -1 when `device` does not name a CUDA device.
int cuda_index(const std::string& device) {
  if (device == "cuda") return 0;
  if (device.rfind("cuda:", 0) != 0 || device.size() == 5) return -1;
  for (size_t i = 5; i < device.size(); ++i)
    if (device[i] < '0' || device[i] > '9') return -1;
  return std::atoi(device.c_str() + 5);
}
}  // namespace

bool have_cuda_backend() {
#ifdef PS_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device, int threads, const std::string& precision) {
  if (precision != "fp32" && precision != "bf16" && precision != "auto")
    throw Error("unknown precision \"" + precision + "\": use fp32, bf16 or auto");
  if (device.empty() || device == "cpu") {
    if (precision == "bf16")
      throw Error("precision bf16 needs a CUDA GPU with bf16 tensor cores; the CPU backend computes in fp32: "
                  "use precision fp32 or auto");
    return std::make_unique<CpuBackend>(threads);
  }
  const int index = cuda_index(device);
  if (index < 0)
    throw Error("unknown device \"" + device + "\": use \"cpu\" or \"cuda\" (\"cuda:N\" for the N-th GPU)");
#ifdef PS_HAVE_CUDA
  return make_cuda_backend(index, precision);
#else
  throw Error("this build has no CUDA backend: rebuild with PEFT_STUDIO_CUDA=1 (needs the CUDA toolkit) or use device cpu");
#endif
}

std::vector<DeviceInfo> device_list(int count, const std::function<DeviceInfo(int)>& query) {
  std::vector<DeviceInfo> out;
  for (int i = 0; i < count; ++i) {
    DeviceInfo d;
    try {
      d = query(i);
    } catch (const std::exception& e) {
      d.error = e.what();
      // an empty message would read as "usable"
      if (d.error.empty()) d.error = "the GPU could not report its properties (no message)";
    } catch (...) {
      d.error = "the GPU could not report its properties (unknown error)";
    }
    d.index = i;  // the position is the runtime's index, whatever the query said
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<DeviceInfo> list_devices() {
#ifdef PS_HAVE_CUDA
  return cuda_devices();
#else
  return {};
#endif
}

std::string gpu_runtime_problem() {
#ifdef PS_HAVE_CUDA
  return cuda_runtime_problem();
#else
  return "";
#endif
}

}  // namespace ps
