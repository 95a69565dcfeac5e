// Splitting elementwise work over the pool only when it is worth a hand-off.
// Every op that uses this owns its outputs element by element (or row by
// row), so running on one thread or many gives the same bits.
#pragma once

#include <cstddef>

#include "threadpool.h"

namespace ps {

// fn(begin, end) over [0, n), on the calling thread when n < 2 * min_chunk.
template <typename Fn>
inline void parallel_range(ThreadPool& pool, size_t n, size_t min_chunk, Fn&& fn) {
  if (n == 0) return;
  if (pool.size() == 1 || n < 2 * min_chunk) {
    fn(size_t{0}, n);
    return;
  }
  pool.parallel_for(n, [&](size_t begin, size_t end, int) { fn(begin, end); });
}

// Elementwise loops: ~16k floats is a few microseconds, the order of a hand-off.
constexpr size_t kElementChunk = 16384;

}  // namespace ps
