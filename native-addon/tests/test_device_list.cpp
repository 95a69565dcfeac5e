// device_list, the loop behind list_devices() / cuda_devices(): every GPU the
// runtime counts stays in the list at its own index, a GPU whose query throws
// keeps its place with the exception's message as `error`, and nothing
// throws. On literal data, since a CPU build cannot make a real GPU fail (the
// CUDA build's cuda_devices() passes cuda_device_info as the query).
#include <stdexcept>
#include <string>
#include <vector>

#include "backend_factory.h"
#include "check.h"
#include "error.h"

namespace {

ps::DeviceInfo gpu(const std::string& name, int major, int minor, uint64_t total, uint64_t free) {
  ps::DeviceInfo d;
  d.name = name;
  d.major = major;
  d.minor = minor;
  d.total_bytes = total;
  d.free_bytes = free;
  return d;
}

constexpr uint64_t GiB = uint64_t(1) << 30;

}  // namespace

int main() {
  // A 3-GPU machine whose GPU 1 cannot report itself (as cuda_device_info
  // throws ps::Error for it): three entries, in index order, GPU 2 at position 2.
  std::vector<int> asked;
  const std::vector<ps::DeviceInfo> three = ps::device_list(3, [&](int i) {
    asked.push_back(i);
    if (i == 1) throw ps::Error("CUDA error: unknown error (cudaGetDeviceProperties)");
    return i == 0 ? gpu("NVIDIA H200", 9, 0, 140 * GiB, 139 * GiB) : gpu("NVIDIA GeForce RTX 4090", 8, 9, 24 * GiB, 22 * GiB);
  });
  CHECK((asked == std::vector<int>{0, 1, 2}));
  CHECK(three.size() == 3);
  if (three.size() == 3) {
    for (int i = 0; i < 3; ++i) CHECK(three[i].index == i);
    CHECK(three[0].name == "NVIDIA H200" && three[0].error.empty());
    CHECK(three[0].major == 9 && three[0].minor == 0);
    CHECK(three[0].total_bytes == 140 * GiB && three[0].free_bytes == 139 * GiB);
    // the failing GPU: only its index and why
    CHECK(three[1].error == "CUDA error: unknown error (cudaGetDeviceProperties)");
    CHECK(three[1].name.empty() && three[1].major == 0 && three[1].total_bytes == 0 && three[1].free_bytes == 0);
    // the entry after it is GPU 2, with its own figures
    CHECK(three[2].name == "NVIDIA GeForce RTX 4090" && three[2].error.empty());
    CHECK(three[2].major == 8 && three[2].minor == 9 && three[2].free_bytes == 22 * GiB);
  }

  // The index is the position even when the query says otherwise.
  const auto renumbered = ps::device_list(2, [](int) {
    ps::DeviceInfo d = gpu("NVIDIA L4", 8, 9, 24 * GiB, 23 * GiB);
    d.index = 7;
    return d;
  });
  CHECK(renumbered.size() == 2 && renumbered[0].index == 0 && renumbered[1].index == 1);

  // Any exception is an entry, never a throw: a std:: one with its message,
  // one with an empty message and a non-std one with a reason all the same
  // (an empty error would read as "usable").
  const auto odd = ps::device_list(4, [](int i) -> ps::DeviceInfo {
    if (i == 0) throw std::runtime_error("cudaErrorDevicesUnavailable: all CUDA-capable devices are busy or unavailable");
    if (i == 1) throw std::runtime_error("");
    if (i == 2) throw 42;
    return gpu("Tesla T4", 7, 5, 16 * GiB, 15 * GiB);
  });
  CHECK(odd.size() == 4);
  if (odd.size() == 4) {
    CHECK(odd[0].error == "cudaErrorDevicesUnavailable: all CUDA-capable devices are busy or unavailable");
    CHECK(odd[1].error == "the GPU could not report its properties (no message)");
    CHECK(odd[2].error == "the GPU could not report its properties (unknown error)");
    CHECK(odd[3].error.empty() && odd[3].name == "Tesla T4" && odd[3].index == 3);
  }

  // Every GPU failing still lists them all; no GPU (or a runtime that cannot
  // count, which reports 0) is an empty list without asking anything.
  const auto none_usable = ps::device_list(2, [](int i) -> ps::DeviceInfo {
    throw ps::Error("GPU " + std::to_string(i) + " fell off the bus");
  });
  CHECK(none_usable.size() == 2 && none_usable[1].index == 1 && none_usable[1].error == "GPU 1 fell off the bus");
  bool queried = false;
  CHECK(ps::device_list(0, [&](int) { queried = true; return ps::DeviceInfo(); }).empty());
  CHECK(ps::device_list(-1, [&](int) { queried = true; return ps::DeviceInfo(); }).empty());
  CHECK(!queried);

  // This build's own list agrees: in index order, each entry usable or saying why.
  const auto listed = ps::list_devices();
  for (size_t i = 0; i < listed.size(); ++i) {
    CHECK(listed[i].index == static_cast<int>(i));
    CHECK(!listed[i].error.empty() || !listed[i].name.empty());
  }
  if (!ps::have_cuda_backend()) CHECK(listed.empty());
  return pstest::finish("test_device_list");
}
