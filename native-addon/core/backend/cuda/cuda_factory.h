// The CUDA half of backend_factory.h, compiled only in a PS_CUDA build.
#pragma once

#include <memory>
#include <vector>

#include "backend_factory.h"

namespace ps {

// Throws ps::Error naming the device count when `device` does not exist.
std::unique_ptr<Backend> make_cuda_backend(int device);
// Every usable device with its free memory now; empty when there is none.
std::vector<DeviceInfo> cuda_devices();

}  // namespace ps
