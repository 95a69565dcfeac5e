// Simulated device memory. Each cudaMalloc is its own mapping: the buffer
// starts 256-byte aligned (the runtime's guarantee) and ends within 255
// bytes of a PROT_NONE guard page (exactly at it when the size is a multiple
// of 256), so reading or writing past the end faults like compute-sanitizer
// would report it. New memory is filled with 0xFF bytes (NaN as float, -1 as
// int): a kernel that reads memory nobody wrote shows up in the results
// instead of reading the zeros a fresh mapping would give.
//
// Reads past the end that stay inside the last 256-byte granule do not
// fault (the start must stay 256-byte aligned); they read the 0xFF fill
// (NaN). Writes there are caught after the kernel: check_padding() finds
// the fill changed and names the buffer.
//
// A freed buffer's pages are given back but its addresses stay reserved
// (PROT_NONE) for a while, so a use after cudaFree faults and is reported
// as such instead of landing in a newer buffer at the same address.
//
// The device has a memory limit, env PS_CUDA_SIM_MEMORY_MB (default 4096),
// so the backend's out-of-memory path runs here too.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "sim_internal.h"
#include "sim_runtime.h"

namespace ps {
namespace cudasim {

namespace {

struct Record {
  Allocation a;
  char* map = nullptr;  // the mapping: data pages, then the guard page
  size_t map_bytes = 0;
  size_t charged = 0;   // counted against the limit
  bool host = false;    // cudaMallocHost: kernels may use it, no limit, no guard
};

std::mutex g_mutex;
std::map<const char*, Record> g_allocs;  // by base address
size_t g_used = 0;
std::unordered_map<const void*, size_t> g_dyn_shared_optin;
std::deque<Record> g_quarantine;  // freed, PROT_NONE, oldest first
size_t g_quarantine_bytes = 0;
constexpr size_t kQuarantineBytes = size_t(1) << 30;  // address space only: the pages are returned

size_t page() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

size_t read_limit() {
  const char* env = std::getenv("PS_CUDA_SIM_MEMORY_MB");
  const size_t dflt = size_t(4096) << 20;
  if (!env || !*env) return dflt;
  char* end = nullptr;
  const unsigned long long mb = std::strtoull(env, &end, 10);
  if (*end != '\0' || mb == 0 || mb > (1ull << 24)) {
    std::fprintf(stderr, "CUDA simulator: PS_CUDA_SIM_MEMORY_MB=\"%s\" is not a size in MiB (1 to 16777216); using 4096\n", env);
    return dflt;
  }
  return static_cast<size_t>(mb) << 20;
}

// The record whose [base, base + bytes] (end inclusive) holds p.
const Record* lookup(const void* p) {
  const char* c = static_cast<const char*>(p);
  auto it = g_allocs.upper_bound(c);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  const Record& r = it->second;
  return c <= r.a.base + r.a.bytes ? &r : nullptr;
}

}  // namespace

size_t memory_limit() {
  static const size_t limit = read_limit();
  return limit;
}

size_t memory_used() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_used;
}

void* device_alloc(size_t bytes) {
  const size_t padded = (bytes + 255) / 256 * 256;
  const size_t charged = padded ? padded : 256;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (charged > memory_limit() || g_used + charged > memory_limit()) return nullptr;
    g_used += charged;
  }
  const size_t data = (charged + page() - 1) / page() * page();
  void* m = mmap(nullptr, data + page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_used -= charged;
    return nullptr;
  }
  char* map = static_cast<char*>(m);
  mprotect(map + data, page(), PROT_NONE);
  char* base = map + data - padded;
  std::memset(base, 0xFF, padded);
  Record r;
  r.a.base = base;
  r.a.bytes = bytes;
  r.map = map;
  r.map_bytes = data + page();
  r.charged = charged;
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allocs[base] = r;
  return base;
}

bool device_free(void* p) {
  Record r;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_allocs.find(static_cast<const char*>(p));
    if (it == g_allocs.end() || it->second.host) return false;
    r = it->second;
    g_allocs.erase(it);
    g_used -= r.charged;
  }
  madvise(r.map, r.map_bytes, MADV_DONTNEED);
  mprotect(r.map, r.map_bytes, PROT_NONE);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_quarantine.push_back(r);
  g_quarantine_bytes += r.map_bytes;
  while (g_quarantine_bytes > kQuarantineBytes || g_quarantine.size() > 4096) {
    const Record& old = g_quarantine.front();
    munmap(old.map, old.map_bytes);
    g_quarantine_bytes -= old.map_bytes;
    g_quarantine.pop_front();
  }
  return true;
}

void* host_alloc(size_t bytes) {
  void* p = std::malloc(bytes ? bytes : 1);
  if (!p) return nullptr;
  Record r;
  r.a.base = static_cast<char*>(p);
  r.a.bytes = bytes;
  r.host = true;
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allocs[r.a.base] = r;
  return p;
}

bool host_free(void* p) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_allocs.find(static_cast<const char*>(p));
    if (it == g_allocs.end() || !it->second.host) return false;
    g_allocs.erase(it);
  }
  std::free(p);
  return true;
}

const Allocation* find_allocation(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const Record* r = lookup(p);
  if (!r) return nullptr;
  const char* c = static_cast<const char*>(p);
  if (bytes > r->a.bytes || c + bytes > r->a.base + r->a.bytes) return nullptr;
  return &r->a;
}

bool is_device_pointer(const void* p) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return lookup(p) != nullptr;
}

bool describe_pointer(const void* p, char* buf, size_t n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return describe_device_address(p, buf, n);
}

std::string check_padding() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto& kv : g_allocs) {
    Record& r = kv.second;
    if (r.host) continue;
    char* end = const_cast<char*>(r.a.base) + r.a.bytes;
    const size_t pad = r.charged - r.a.bytes;
    size_t first = pad, last = 0;
    for (size_t i = 0; i < pad; ++i)
      if (static_cast<unsigned char>(end[i]) != 0xFF) {
        if (first == pad) first = i;
        last = i;
      }
    if (first < pad) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "wrote past the end of a %zu-byte device buffer at %p (bytes %zu to %zu after its end)",
                    r.a.bytes, static_cast<const void*>(r.a.base), first, last);
      std::memset(end, 0xFF, pad);  // restore, so one overrun is reported once
      return buf;
    }
  }
  return std::string();
}

bool describe_device_address(const void* addr, char* buf, size_t n) {
  // Called from the fault handler: no lock (the process is about to die anyway).
  const char* c = static_cast<const char*>(addr);
  for (const auto& kv : g_allocs) {
    const Record& r = kv.second;
    if (r.host) continue;
    if (c >= r.a.base + r.a.bytes && c < r.map + r.map_bytes) {
      std::snprintf(buf, n, "address %p is %zu bytes past the end of a %zu-byte device buffer at %p", addr,
                    static_cast<size_t>(c - (r.a.base + r.a.bytes)), r.a.bytes, static_cast<const void*>(r.a.base));
      return true;
    }
  }
  for (const Record& r : g_quarantine)
    if (c >= r.map && c < r.map + r.map_bytes) {
      std::snprintf(buf, n, "address %p is in a %zu-byte device buffer at %p that was freed (use after cudaFree)", addr,
                    r.a.bytes, static_cast<const void*>(r.a.base));
      return true;
    }
  return false;
}

void set_max_dynamic_shared(const void* fn, int bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_dyn_shared_optin[fn] = static_cast<size_t>(bytes);
}

size_t max_dynamic_shared(const void* fn) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_dyn_shared_optin.find(fn);
  return it == g_dyn_shared_optin.end() || it->second < 48 * 1024 ? 48 * 1024 : it->second;
}

}  // namespace cudasim
}  // namespace ps
