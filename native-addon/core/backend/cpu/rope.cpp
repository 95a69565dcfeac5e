// Rotary position embedding in Hugging Face's rotate_half layout: dimension i
// pairs with i + D/2 (not 2i with 2i+1). cos/sin tables are [max_pos, D/2]
// (HF's tables repeat the same D/2 values twice). Applied in place.
#include <string>

#include "cpu_backend.h"
#include "error.h"
#include "parallel_range.h"

namespace ps {

namespace {

void check_rope(const char* op, const int32_t* pos, int rows, int D) {
  if (D <= 0 || D % 2 != 0)
    throw Error(std::string(op) + ": head dim must be even and positive, got " + std::to_string(D));
  for (int r = 0; r < rows; ++r)
    if (pos[r] < 0)
      throw Error(std::string(op) + ": position " + std::to_string(pos[r]) + " at row " +
                  std::to_string(r) + " is negative");
}

// x[i], x[i+half] <- rotation by the angle of (pos, i); kInverse rotates back
// (the transpose, which is the backward of the rotation).
template <bool kInverse>
void rope_apply(ThreadPool& pool, float* x, const int32_t* pos, int rows, int H, int D,
                const float* cos, const float* sin) {
  const int half = D / 2;
  const size_t row_floats = static_cast<size_t>(H) * D;
  const size_t min_rows = kElementChunk / row_floats + 1;
  parallel_range(pool, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* c = cos + static_cast<size_t>(pos[r]) * half;
      const float* s = sin + static_cast<size_t>(pos[r]) * half;
      for (int h = 0; h < H; ++h) {
        float* lo = x + r * row_floats + static_cast<size_t>(h) * D;
        float* hi = lo + half;
        for (int i = 0; i < half; ++i) {
          const float a = lo[i], b = hi[i];
          if (!kInverse) {
            lo[i] = a * c[i] - b * s[i];
            hi[i] = b * c[i] + a * s[i];
          } else {
            lo[i] = a * c[i] + b * s[i];
            hi[i] = b * c[i] - a * s[i];
          }
        }
      }
    }
  });
}

}  // namespace

void CpuBackend::rope_forward(float* x, const int32_t* pos, int rows, int H, int D,
                              const float* cos, const float* sin) {
  if (rows <= 0 || H <= 0) return;
  check_rope("rope_forward", pos, rows, D);
  rope_apply<false>(*pool_, x, pos, rows, H, D, cos, sin);
}

void CpuBackend::rope_backward(float* dx, const int32_t* pos, int rows, int H, int D,
                               const float* cos, const float* sin) {
  if (rows <= 0 || H <= 0) return;
  check_rope("rope_backward", pos, rows, D);
  rope_apply<true>(*pool_, dx, pos, rows, H, D, cos, sin);
}

}  // namespace ps
