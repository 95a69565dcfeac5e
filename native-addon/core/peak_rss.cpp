// Peak resident set size of the process, for MemoryUsage and the benchmarks.
#include <cstdint>

#include "engine.h"

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#define PSAPI_VERSION 2  // GetProcessMemoryInfo from kernel32, no psapi.lib
#include <windows.h>
#include <psapi.h>
#else
#include <sys/resource.h>
#endif

namespace ps {

uint64_t peak_rss_bytes() {
#if defined(_WIN32)
  PROCESS_MEMORY_COUNTERS pmc;
  if (GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc))) return pmc.PeakWorkingSetSize;
  return 0;
#else
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#if defined(__APPLE__)
  return static_cast<uint64_t>(ru.ru_maxrss);  // bytes on macOS
#else
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // kilobytes on Linux
#endif
#endif
}

}  // namespace ps
