// The CUDA half of the backend factory (cuda_factory.h). A .cu file although
// it has no kernels: it is built with the rest of ps_cuda by nvcc, so it only
// exists in a PS_CUDA build and needs no host-compiler flags of its own.
#include "backend/cuda/cuda_factory.h"

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_bf16.h"
#include "error.h"

namespace ps {

std::unique_ptr<Backend> make_cuda_backend(int device, const std::string& precision) {
  std::string reason;
  const int n = cuda_device_count(&reason);
  if (n == 0) throw Error("device cuda: no usable NVIDIA GPU (" + reason + "); use device cpu");
  if (device >= n)
    throw Error("device cuda:" + std::to_string(device) + " does not exist: this machine has " + std::to_string(n) +
                " GPU" + (n == 1 ? "" : "s") + " (cuda:0 to cuda:" + std::to_string(n - 1) + ")");
  auto be = std::make_unique<CudaBackend>(device);
  if (precision == "bf16" || (precision == "auto" && cuda::bf16_unavailable_reason(be->device_info()).empty()))
    be->set_gemm_precision(CudaBackend::GemmPrecision::Bf16);
  return be;
}

std::vector<DeviceInfo> cuda_devices() {
  // Every device the runtime counts, a failing one with its error
  // (device_list): leaving it out would make entry N another GPU than cuda:N.
  return device_list(cuda_device_count(), [](int i) {
    CudaDeviceInfo c;
    try {
      c = cuda_device_info(i);
    } catch (...) {
      // The runtime keeps the failed query's error for the next check:
      // clear it, or the first launch on a healthy GPU would report it.
      cudaGetLastError();
      throw;
    }
    DeviceInfo d;
    d.index = c.index;
    d.name = c.name;
    d.major = c.major;
    d.minor = c.minor;
    d.total_bytes = c.total_bytes;
    d.free_bytes = c.free_bytes;
    return d;
  });
}

std::string cuda_runtime_problem() {
  std::string why;
  return cuda_device_count(&why) > 0 ? std::string() : why;
}

}  // namespace ps
