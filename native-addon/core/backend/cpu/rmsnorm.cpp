// RMSNorm as Hugging Face's LlamaRMSNorm computes it in fp32:
//   y = w * (x * rsqrt(mean(x^2) + eps))
// Backward, with r = rstd of the row and g = w * dy:
//   dx = r g - x r^3 mean(g * x)        dw = sum over rows of dy * (x r)
#include <cmath>
#include <vector>

#include "cpu_backend.h"
#include "parallel_range.h"
#include "vec_math.h"

namespace ps {

void CpuBackend::rmsnorm_forward(const float* x, const float* w, float* y, float* rstd, int rows,
                                 int D, float eps) {
  if (rows <= 0 || D <= 0) return;
  const size_t min_rows = kElementChunk / static_cast<size_t>(D) + 1;
  parallel_range(*pool_, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * D;
      float* yr = y + r * D;
      const float mean_sq = vm_dot(xr, xr, D) / static_cast<float>(D);
      const float rs = 1.0f / std::sqrt(mean_sq + eps);
      if (rstd) rstd[r] = rs;
      for (int j = 0; j < D; ++j) yr[j] = w[j] * (xr[j] * rs);
    }
  });
}

void CpuBackend::rmsnorm_backward(const float* dy, const float* x, const float* w,
                                  const float* rstd, int rows, int D, float* dx, float* dw) {
  if (rows <= 0 || D <= 0) return;
  if (dx) {
    const size_t min_rows = kElementChunk / static_cast<size_t>(D) + 1;
    parallel_range(*pool_, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
      for (size_t r = r0; r < r1; ++r) {
        const float* xr = x + r * D;
        const float* dyr = dy + r * D;
        float* dxr = dx + r * D;
        const float rs = rstd[r];
        float gx[kVmLanes] = {};  // sum_j w_j dy_j x_j in lanes
        const int nv = D - D % kVmLanes;
        for (int j = 0; j < nv; j += kVmLanes)
          for (int l = 0; l < kVmLanes; ++l) gx[l] += w[j + l] * dyr[j + l] * xr[j + l];
        float dot = 0.0f;
        for (int l = 0; l < kVmLanes; ++l) dot += gx[l];
        for (int j = nv; j < D; ++j) dot += w[j] * dyr[j] * xr[j];
        const float c = dot * rs * rs * rs / static_cast<float>(D);
        for (int j = 0; j < D; ++j) dxr[j] += rs * (w[j] * dyr[j]) - xr[j] * c;
      }
    });
  }
  if (dw) {
    // Threads split the columns and each walks all rows in order: the same
    // sums whatever the thread count.
    std::vector<double> acc(static_cast<size_t>(D), 0.0);
    const size_t min_cols = kElementChunk / static_cast<size_t>(rows) + 1;
    parallel_range(*pool_, static_cast<size_t>(D), min_cols, [&](size_t c0, size_t c1) {
      double* a = acc.data();
      for (int r = 0; r < rows; ++r) {
        const float* xr = x + static_cast<size_t>(r) * D;
        const float* dyr = dy + static_cast<size_t>(r) * D;
        const float rs = rstd[r];
        for (size_t c = c0; c < c1; ++c) a[c] += dyr[c] * (xr[c] * rs);
      }
      for (size_t c = c0; c < c1; ++c) dw[c] += static_cast<float>(a[c]);
    });
  }
}

}  // namespace ps
