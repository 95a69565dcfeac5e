// Token embedding lookup and its gradient (a scatter-add into the table).
#include <cstring>
#include <string>

#include "cpu_backend.h"
#include "error.h"
#include "parallel_range.h"

namespace ps {

namespace {
// The table's row count is not part of the op, so only the sign can be
// checked here; the caller checks ids against the vocabulary size.
void check_ids(const char* op, const int32_t* ids, int rows) {
  for (int r = 0; r < rows; ++r)
    if (ids[r] < 0)
      throw Error(std::string(op) + ": token id " + std::to_string(ids[r]) + " at row " +
                  std::to_string(r) + " is negative");
}
}  // namespace

void CpuBackend::embedding_forward(const int32_t* ids, int rows, const float* table, int D,
                                   float* out) {
  if (rows <= 0 || D <= 0) return;
  check_ids("embedding_forward", ids, rows);
  const size_t min_rows = kElementChunk / static_cast<size_t>(D) + 1;
  parallel_range(*pool_, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r)
      std::memcpy(out + r * D, table + static_cast<size_t>(ids[r]) * D, sizeof(float) * D);
  });
}

// Rows that share an id add into the same table row, so threads split the
// columns, not the rows: each thread walks all rows in order over its own
// columns. The result is the same for any thread count.
void CpuBackend::embedding_backward(const int32_t* ids, int rows, const float* dout, int D,
                                    float* dtable) {
  if (rows <= 0 || D <= 0 || !dtable) return;
  check_ids("embedding_backward", ids, rows);
  const size_t min_cols = kElementChunk / static_cast<size_t>(rows) + 1;
  parallel_range(*pool_, static_cast<size_t>(D), min_cols, [&](size_t c0, size_t c1) {
    for (int r = 0; r < rows; ++r) {
      float* dst = dtable + static_cast<size_t>(ids[r]) * D;
      const float* src = dout + static_cast<size_t>(r) * D;
      for (size_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  });
}

}  // namespace ps
