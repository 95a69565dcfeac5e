// Device copies of host vectors for the CUDA tests, released at scope end;
// whether a test runs on the simulator.
#pragma once

#include <vector>

#include "backend/cuda/cuda_backend.h"

namespace cudatest {

// Whether this test runs on the CUDA simulator (smaller sizes, the reversed-order checks, no timings).
#ifdef PS_CUDA_SIM
constexpr bool kSim = true;
#else
constexpr bool kSim = false;
#endif

class DeviceBuffers {
 public:
  explicit DeviceBuffers(ps::CudaBackend& be) : be_(be) {}
  ~DeviceBuffers() {
    for (void* p : ptrs_) be_.release(p);
  }
  DeviceBuffers(const DeviceBuffers&) = delete;
  DeviceBuffers& operator=(const DeviceBuffers&) = delete;

  // A device copy of h (an empty vector still gets a valid allocation).
  template <typename T>
  T* put(const std::vector<T>& h) {
    T* p = static_cast<T*>(be_.alloc(h.size() * sizeof(T) + 1));
    ptrs_.push_back(p);
    be_.upload(p, h.data(), h.size() * sizeof(T));
    return p;
  }
  template <typename T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> h(n);
    be_.download(h.data(), p, n * sizeof(T));
    return h;
  }

 private:
  ps::CudaBackend& be_;
  std::vector<void*> ptrs_;
};

}  // namespace cudatest
