// The summation order of Backend::column_dot, shared by every backend: each
// column is summed over fixed chunks of kColumnDotRows rows (each chunk in
// row order, in double), and the chunk sums then added in chunk order. The
// CPU walks the same order in one pass; the CUDA backend gives every
// (column, chunk) its own thread, so a step's rows fill the device instead
// of one thread per column walking them all, and finishes with one thread
// per column: both give the same bits. Plain C++ so the memory estimate
// counts the device's chunk sums as the kernel asks for them.
#pragma once

#include <cstddef>

namespace ps {

constexpr int kColumnDotRows = 256;

inline int column_dot_chunks(int rows) { return rows <= 0 ? 0 : (rows + kColumnDotRows - 1) / kColumnDotRows; }

// Bytes of the chunk sums a device backend keeps while one call runs.
inline size_t column_dot_scratch_bytes(int rows, int N) {
  return static_cast<size_t>(column_dot_chunks(rows)) * static_cast<size_t>(N > 0 ? N : 0) * sizeof(double);
}

}  // namespace ps
