// DoRA's three small ops on the CPU (backend.h): the per-column factor that
// turns W x + s B A x into (m / n) (W x + s B A x), the magnitude's gradient
// (a column dot product over the rows, in column_dot_plan.h's order, a
// thread owning a slice of columns: no dependence on the thread count), and
// the weight norm from its parts.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../column_dot_plan.h"
#include "cpu_backend.h"
#include "parallel_range.h"

namespace ps {

void CpuBackend::scale_columns(const float* x, const float* f, float offset, int rows, int N, float beta,
                               float* y) {
  if (rows <= 0 || N <= 0) return;
  const size_t min_rows = kElementChunk / static_cast<size_t>(N) + 1;
  parallel_range(*pool_, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * N;
      float* yr = y + r * N;
      if (beta == 0.0f)
        for (int c = 0; c < N; ++c) yr[c] = xr[c] * (f[c] + offset);
      else
        for (int c = 0; c < N; ++c) yr[c] += xr[c] * (f[c] + offset);
    }
  });
}

void CpuBackend::column_dot(const float* a, const float* b, const float* scale, int rows, int N, float* out) {
  if (rows <= 0 || N <= 0) return;
  const size_t min_cols = kElementChunk / static_cast<size_t>(rows) + 1;
  parallel_range(*pool_, static_cast<size_t>(N), min_cols, [&](size_t c0, size_t c1) {
    const size_t width = c1 - c0;
    std::vector<double> total(width, 0.0), chunk(width);
    for (int r0 = 0; r0 < rows; r0 += kColumnDotRows) {
      const int r1 = std::min(rows, r0 + kColumnDotRows);
      std::fill(chunk.begin(), chunk.end(), 0.0);
      for (int r = r0; r < r1; ++r) {
        const float* ar = a + static_cast<size_t>(r) * N + c0;
        const float* br = b + static_cast<size_t>(r) * N + c0;
        for (size_t c = 0; c < width; ++c) chunk[c] += static_cast<double>(ar[c]) * br[c];
      }
      for (size_t c = 0; c < width; ++c) total[c] += chunk[c];
    }
    for (size_t c = 0; c < width; ++c) out[c0 + c] += static_cast<float>(scale[c0 + c] * total[c]);
  });
}

void CpuBackend::dora_norm(int N, int r, float s, const float* w_sq, const float* PT, const float* B,
                           const float* BC, const float* m, float* inv_norm, float* factor) {
  if (N <= 0) return;
  parallel_range(*pool_, static_cast<size_t>(N), 256, [&](size_t j0, size_t j1) {
    for (size_t j = j0; j < j1; ++j) {
      double cross = 0, lora_sq = 0;
      for (int k = 0; k < r; ++k) {
        const double bjk = B[j * r + k];
        cross += bjk * PT[static_cast<size_t>(k) * N + j];
        lora_sq += bjk * BC[j * r + k];
      }
      // Rounding can take a row that cancels to zero a hair below it.
      const double sq = std::max(0.0, w_sq[j] + 2.0 * s * cross + static_cast<double>(s) * s * lora_sq);
      const double n = std::sqrt(sq);
      inv_norm[j] = static_cast<float>(1.0 / n);
      factor[j] = static_cast<float>(m[j] / n);
    }
  });
}

}  // namespace ps
