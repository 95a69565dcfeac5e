// The NVML reader of backend/cuda/nvml (a GPU's free memory without a CUDA
// context), on any machine, with real dlopen calls on real files: the PCI
// address format NVML expects; a file that does not exist and a library that
// is not NVML (libm), each with a message naming the file and what to do;
// this machine's own search (without a driver: which file could not be
// opened; with one, as on the GPU machine: every figure nvidia-smi shows for
// the GPU at that address, to 1 % since other processes may allocate).
// The library is opened once per process, so each case runs in a child
// (this executable again, with PEFT_STUDIO_NVML set).
// The reader is plain C++, compiled into this test directly (it is part of
// ps_cuda, which a CPU build does not have). Linux only.
#include "backend/cuda/nvml/nvml_memory.cpp"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "check.h"

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The file the dynamic loader maps for libm: a real shared library that is not NVML.
std::string libm_path() {
  void* h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
  Dl_info info{};
  if (!h || !dladdr(dlsym(h, "cos"), &info) || !info.dli_fname) return "libm.so.6";
  return info.dli_fname;
}

// Child mode: read GPU 0000:00:00 and require `expected` in the failure message.
int child(const std::string& expected) {
  const ps::nvml::Memory m = ps::nvml::memory_by_pci(0, 0, 0);
  std::printf("  %s\n", m.ok ? "NVML answered" : m.why.c_str());
  return !m.ok && contains(m.why, expected) ? 0 : 1;
}

// Runs this executable as a child with PEFT_STUDIO_NVML=library; true when the message had `expected`.
bool child_says(const std::string& library, const std::string& expected) {
  char self[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);  // (in the shell it would be the shell)
  if (n <= 0) return false;
  const std::string cmd = "PEFT_STUDIO_NVML='" + library + "' '" + std::string(self, static_cast<size_t>(n)) +
                          "' --expect '" + expected + "'";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--expect") return child(argv[2]);
  using ps::nvml::pci_bus_id;
  // The format of nvmlPciInfo_t.busId: 8 hex digits of domain, 2 of bus, 2 of device, function 0.
  CHECK(pci_bus_id(0, 0x3b, 0) == "00000000:3b:00.0");
  CHECK(pci_bus_id(1, 0xc1, 0x1f) == "00000001:c1:1f.0");
  // A file that is not there: named, with where NVML comes from.
  CHECK(child_says("/nonexistent/libnvidia-ml.so.1", "cannot open /nonexistent/libnvidia-ml.so.1"));
  CHECK(child_says("/nonexistent/libnvidia-ml.so.1", "it comes with the NVIDIA driver"));
  // A library that opens but is not NVML: the first missing symbol.
  const std::string libm = libm_path();
  CHECK(child_says(libm, libm + " has no nvmlInit_v2"));

  // This machine's own search.
  unsetenv("PEFT_STUDIO_NVML");
  const ps::nvml::Memory m = ps::nvml::memory_by_pci(0, 0, 0);
  std::printf("  this machine (PCI 00000000:00:00.0): %s\n", m.ok ? "NVML answered" : m.why.c_str());
  void* driver = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver) {
    CHECK(!m.ok && contains(m.why, "cannot open libnvidia-ml.so.1"));
    return pstest::finish("test_nvml_memory");
  }
  // A driver is here (the GPU machine): every GPU nvidia-smi lists, by its PCI address.
  FILE* smi = popen("nvidia-smi --query-gpu=pci.bus_id,memory.total,memory.free --format=csv,noheader,nounits", "r");
  int gpus = 0;
  char line[256];
  while (smi && std::fgets(line, sizeof line, smi)) {
    unsigned domain = 0, bus = 0, dev = 0, fn = 0;
    double total_mib = 0, free_mib = 0;
    if (std::sscanf(line, "%x:%x:%x.%x, %lf, %lf", &domain, &bus, &dev, &fn, &total_mib, &free_mib) != 6) continue;
    const ps::nvml::Memory g = ps::nvml::memory_by_pci(static_cast<int>(domain), static_cast<int>(bus),
                                                      static_cast<int>(dev));
    std::printf("  GPU %s: NVML free %.0f / total %.0f MiB, nvidia-smi %.0f / %.0f MiB%s\n",
                pci_bus_id(static_cast<int>(domain), static_cast<int>(bus), static_cast<int>(dev)).c_str(),
                g.free_bytes / 1048576.0, g.total_bytes / 1048576.0, free_mib, total_mib, g.ok ? "" : g.why.c_str());
    CHECK(g.ok);
    CHECK(std::fabs(g.total_bytes / 1048576.0 - total_mib) <= 0.01 * total_mib + 1);
    CHECK(std::fabs(g.free_bytes / 1048576.0 - free_mib) <= 0.01 * total_mib + 1);
    ++gpus;
  }
  if (smi) pclose(smi);
  CHECK(gpus > 0);
  return pstest::finish("test_nvml_memory");
}
