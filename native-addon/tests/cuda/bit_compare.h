// Bit-for-bit comparison of two arrays for the CUDA tests: one line in the
// log ("bit-exact ok / FAIL"), a test failure naming the count and the first
// differing element.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"

namespace cudatest {

template <typename T>
void compare_bits(const std::string& what, const std::vector<T>& got, const std::vector<T>& want) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0) {
      if (!bad) first = i;
      ++bad;
    }
  if (got.size() != want.size()) bad = got.size() + want.size();
  std::printf("  %-52s n=%-8zu bit-exact  %s\n", what.c_str(), got.size(), bad ? "FAIL" : "ok");
  if (bad)
    pstest::fail(__FILE__, __LINE__, what + ": " + std::to_string(bad) + " elements differ in bits, first at " +
                                         std::to_string(first));
}

}  // namespace cudatest
