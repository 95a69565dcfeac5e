// A per-thread scratch buffer that grows and is then reused across calls:
// the GEMMs (fp32 and 4-bit) keep their packing panels in thread_local
// Workspaces, because allocating megabytes per call would page-fault on every
// call. 64-byte aligned for the vector kernels.
#pragma once

#include <cstddef>
#include <cstdlib>

#if defined(_MSC_VER)
#include <malloc.h>
#endif

#include "error.h"

namespace ps {

class Workspace {
 public:
  explicit Workspace(const char* what) : what_(what) {}
  ~Workspace() { release(); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // At least `floats` floats; the contents are not kept when it grows.
  float* get(size_t floats) {
    if (floats > cap_) {
      release();
      const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
#if defined(_MSC_VER)
      data_ = static_cast<float*>(_aligned_malloc(bytes, 64));
#else
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
#endif
      if (!data_) throw OutOfMemory(what_, bytes);
      cap_ = floats;
    }
    return data_;
  }

  // Gives the memory back (the next get allocates again).
  void release() {
#if defined(_MSC_VER)
    _aligned_free(data_);
#else
    std::free(data_);
#endif
    data_ = nullptr;
    cap_ = 0;
  }
 private:
  const char* what_;
  float* data_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace ps
