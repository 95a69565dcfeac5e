#include "nvml_memory.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace ps {
namespace nvml {

namespace {

// The declared subset of nvml.h (NVML API reference, "Device Queries" and
// "Initialization and Cleanup"): nvmlReturn_t is an int enum, NVML_SUCCESS 0;
// nvmlDevice_t an opaque pointer; nvmlMemory_t (v1) three unsigned long long
// in the order total, free, used.
using Return = int;
constexpr Return kSuccess = 0;
using Device = struct Opaque*;
struct MemoryV1 {
  unsigned long long total, free, used;
};
static_assert(sizeof(MemoryV1) == 24, "nvmlMemory_t is three 64-bit counts");

struct Library {
  Return (*init)() = nullptr;                                          // nvmlInit_v2
  Return (*by_pci)(const char*, Device*) = nullptr;                    // nvmlDeviceGetHandleByPciBusId_v2
  Return (*memory)(Device, MemoryV1*) = nullptr;                       // nvmlDeviceGetMemoryInfo
  const char* (*error_string)(Return) = nullptr;                       // nvmlErrorString
  std::string why;  // empty when usable
};

std::string error_text(const Library& lib, Return r) {
  const char* s = lib.error_string ? lib.error_string(r) : nullptr;
  return (s ? std::string(s) : std::string("error")) + " (NVML code " + std::to_string(r) + ")";
}

Library open_library() {
  Library lib;
  const char* env = std::getenv("PEFT_STUDIO_NVML");
  const std::string file = env && *env ? env : "libnvidia-ml.so.1";
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    lib.why = "cannot open " + file + " (" + (e ? e : "unknown error") +
              "): it comes with the NVIDIA driver; is the driver installed?";
    return lib;
  }
  auto sym = [&](const char* name) {
    void* p = dlsym(h, name);
    if (!p && lib.why.empty()) lib.why = file + " has no " + name + ": not NVIDIA's management library, or too old a driver";
    return p;
  };
  lib.init = reinterpret_cast<Return (*)()>(sym("nvmlInit_v2"));
  lib.by_pci = reinterpret_cast<Return (*)(const char*, Device*)>(sym("nvmlDeviceGetHandleByPciBusId_v2"));
  lib.memory = reinterpret_cast<Return (*)(Device, MemoryV1*)>(sym("nvmlDeviceGetMemoryInfo"));
  lib.error_string = reinterpret_cast<const char* (*)(Return)>(dlsym(h, "nvmlErrorString"));  // optional
  if (!lib.why.empty()) return lib;  // the handle stays open: harmless, and dlclose of driver libraries is not
  const Return r = lib.init();
  if (r != kSuccess) lib.why = "nvmlInit_v2 failed: " + error_text(lib, r);
  return lib;
}

// Opened and initialised once (never shut down: other threads may be asking).
const Library& library() {
  static std::once_flag once;
  static Library lib;
  std::call_once(once, [] { lib = open_library(); });
  return lib;
}

}  // namespace

std::string pci_bus_id(int domain, int bus, int device) {
  char text[32];
  std::snprintf(text, sizeof text, "%08x:%02x:%02x.0", static_cast<unsigned>(domain), static_cast<unsigned>(bus),
                static_cast<unsigned>(device));
  return text;
}

Memory memory_by_pci(int domain, int bus, int device) {
  Memory m;
  const Library& lib = library();
  if (!lib.why.empty()) {
    m.why = lib.why;
    return m;
  }
  const std::string id = pci_bus_id(domain, bus, device);
  Device d = nullptr;
  Return r = lib.by_pci(id.c_str(), &d);
  if (r != kSuccess) {
    m.why = "NVML has no GPU at PCI " + id + ": " + error_text(lib, r);
    return m;
  }
  MemoryV1 info{};
  r = lib.memory(d, &info);
  if (r != kSuccess) {
    m.why = "nvmlDeviceGetMemoryInfo(" + id + ") failed: " + error_text(lib, r);
    return m;
  }
  m.ok = true;
  m.free_bytes = info.free;
  m.total_bytes = info.total;
  return m;
}

}  // namespace nvml
}  // namespace ps
