// A minimal test harness for the core's CTest executables: no framework, so
// they build anywhere CMake does (including the GPU machine).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace pstest {

inline int& failures() {
  static int n = 0;
  return n;
}

inline void fail(const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "FAIL %s:%d: %s\n", file, line, msg.c_str());
  ++failures();
}

// |got - want| <= atol + rtol * |want|
inline bool close(double got, double want, double rtol, double atol) {
  return std::fabs(got - want) <= atol + rtol * std::fabs(want) && !std::isnan(got);
}

inline int finish(const char* name) {
  if (failures()) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures());
    return 1;
  }
  std::printf("%s: all checks passed\n", name);
  return 0;
}

}  // namespace pstest

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) pstest::fail(__FILE__, __LINE__, "CHECK(" #cond ")");      \
  } while (0)

#define CHECK_CLOSE(got, want, rtol, atol)                                                  \
  do {                                                                                      \
    double g_ = (got), w_ = (want);                                                         \
    if (!pstest::close(g_, w_, (rtol), (atol)))                                             \
      pstest::fail(__FILE__, __LINE__,                                                      \
                   std::string(#got " = ") + std::to_string(g_) + ", want " + std::to_string(w_)); \
  } while (0)
