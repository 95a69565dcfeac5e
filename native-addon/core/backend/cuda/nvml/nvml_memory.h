// A GPU's free and total memory from NVIDIA's management library (NVML,
// libnvidia-ml.so.1, installed with every Linux driver), opened at run time.
// Plain C++ with no CUDA or NVML header, so the CPU build tests it
// (tests/test_nvml_memory.cpp).
//
// Why not cudaMemGetInfo: it reports only the current device and creates
// the process's CUDA context on it first (a few hundred MiB held for the
// life of the process). Listing devices for the memory estimate must not do
// that: the app's main process would keep a context on GPU 0, and the
// training child would see its own context already taken out of "free" and
// then count it again in the estimate's context allowance. NVML reads the
// device's state without a context, for every device, as nvidia-smi does.
#pragma once

#include <cstdint>
#include <string>

namespace ps {
namespace nvml {

struct Memory {
  bool ok = false;
  uint64_t free_bytes = 0, total_bytes = 0;
  std::string why;  // when !ok: what failed (the library, a symbol, the device lookup)
};

// The memory of the GPU at this PCI address (cudaDeviceProp's pciDomainID,
// pciBusID, pciDeviceID: the same device whatever CUDA_VISIBLE_DEVICES or
// CUDA_DEVICE_ORDER renumber). The library is opened and initialised once
// per process (PEFT_STUDIO_NVML=/path/to/libnvidia-ml.so overrides the
// file; tests use it). Never throws.
Memory memory_by_pci(int domain, int bus, int device);

// "domain:bus:device.0" as NVML's pciBusId ("%08x:%02x:%02x.0").
std::string pci_bus_id(int domain, int bus, int device);

}  // namespace nvml
}  // namespace ps
