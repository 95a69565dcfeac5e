// The CUDA half of backend_factory.h, compiled only in a PS_CUDA build.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend_factory.h"

namespace ps {

// Throws ps::Error naming the device count when `device` does not exist, and
// for precision "bf16" on a GPU without bf16 tensor cores ("auto": bf16 where
// the GPU has them, else fp32).
std::unique_ptr<Backend> make_cuda_backend(int device, const std::string& precision);
// Every device the runtime counts, in index order, with its free memory now;
// one that cannot report itself carries the reason in `error` (device_list).
// Empty when there is none.
std::vector<DeviceInfo> cuda_devices();
// Why the runtime counts no GPU (no driver, a driver too old for the
// runtime, none visible), with what to do; "" when it counts one or more.
std::string cuda_runtime_problem();

}  // namespace ps
