// A per-thread scratch buffer that grows and is then reused across calls:
// the GEMMs (fp32 and 4-bit) keep their packing panels in thread_local
// Workspaces, because allocating megabytes per call would page-fault on every
// call. 64-byte aligned for the vector kernels.
//
// Every Workspace counts what it holds in one process-wide tally
// (workspace_bytes_live / _peak), which the engine reports (MemoryUsage) and
// tests hold against the memory estimate's "scratch" part
// (backend/cpu/scratch_bounds.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#if defined(_MSC_VER)
#include <malloc.h>
#endif

#include "error.h"

namespace ps {

namespace workspace_tally {
inline std::atomic<uint64_t> live{0};
inline std::atomic<uint64_t> peak{0};
inline void grew(uint64_t bytes) {
  const uint64_t now = live.fetch_add(bytes) + bytes;
  uint64_t seen = peak.load();
  while (now > seen && !peak.compare_exchange_weak(seen, now)) {
  }
}
inline void shrank(uint64_t bytes) { live.fetch_sub(bytes); }
}  // namespace workspace_tally

// The bytes all Workspaces of this process hold now, and the most they have
// held at once since the last reset_workspace_peak() (or the start).
inline uint64_t workspace_bytes_live() { return workspace_tally::live.load(); }
inline uint64_t workspace_bytes_peak() { return workspace_tally::peak.load(); }
inline void reset_workspace_peak() { workspace_tally::peak.store(workspace_tally::live.load()); }

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
      bytes_ = bytes;
      workspace_tally::grew(bytes);
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
    workspace_tally::shrank(bytes_);
    bytes_ = 0;
  }
 private:
  const char* what_;
  float* data_ = nullptr;
  size_t cap_ = 0;
  uint64_t bytes_ = 0;  // what was allocated (cap_ floats, rounded to 64 bytes)
};

}  // namespace ps
