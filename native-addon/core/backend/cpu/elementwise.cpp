// Elementwise ops of the CPU backend: residual add, bias add and its
// gradient, inverted dropout with a recomputed (never stored) mask.
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "dropout_mask.h"
#include "error.h"
#include "parallel_range.h"

namespace ps {

void CpuBackend::add(float* y, const float* x, size_t n) {
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void CpuBackend::add_bias(float* y, const float* bias, int rows, int N) {
  if (rows <= 0 || N <= 0) return;
  const size_t min_rows = kElementChunk / static_cast<size_t>(N) + 1;
  parallel_range(*pool_, static_cast<size_t>(rows), min_rows, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* yr = y + r * N;
      for (int c = 0; c < N; ++c) yr[c] += bias[c];
    }
  });
}

// Each thread owns a slice of columns and walks every row in order, so the
// sum for a column is the same whatever the thread count. Sums in double.
void CpuBackend::bias_backward(const float* dy, int rows, int N, float* db) {
  if (rows <= 0 || N <= 0 || !db) return;
  std::vector<double> acc(static_cast<size_t>(N), 0.0);
  const size_t min_cols = kElementChunk / static_cast<size_t>(rows) + 1;
  parallel_range(*pool_, static_cast<size_t>(N), min_cols, [&](size_t c0, size_t c1) {
    double* a = acc.data();
    for (int r = 0; r < rows; ++r) {
      const float* dyr = dy + static_cast<size_t>(r) * N;
      for (size_t c = c0; c < c1; ++c) a[c] += dyr[c];
    }
    for (size_t c = c0; c < c1; ++c) db[c] += static_cast<float>(a[c]);
  });
}

namespace {

void check_dropout_p(const char* op, float p) {
  if (!(p >= 0.0f && p <= 1.0f))
    throw Error(std::string(op) + ": dropout probability must be in [0, 1], got " +
                std::to_string(p) + " (check lora_dropout)");
}

// out = mask(in) * 1/(1-p), or out += that. The mask depends only on
// (key, index), so the split over threads does not matter.
void dropout_apply(ThreadPool& pool, bool avx2, const float* in, float* out, size_t n, float p,
                   uint64_t key, bool accumulate) {
  const DropoutKey k = dropout_key(key);
  const uint32_t threshold = dropout_threshold(p);
  // torch: noise = bernoulli(1-p) / (1-p), y = x * noise. p = 1 keeps nothing.
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  parallel_range(pool, n, kElementChunk, [&](size_t b, size_t e) {
#if defined(PS_HAVE_AVX2_KERNELS)
    if (avx2) {
      dropout_span_avx2(k, threshold, scale, in, out, b, e, accumulate);
      return;
    }
#else
    (void)avx2;
#endif
    if (accumulate) dropout_span<true>(k, threshold, scale, in, out, b, e);
    else dropout_span<false>(k, threshold, scale, in, out, b, e);
  });
}

}  // namespace

void CpuBackend::dropout_forward(const float* x, float* y, size_t n, float p, uint64_t key) {
  check_dropout_p("dropout_forward", p);
  dropout_apply(*pool_, use_avx2_, x, y, n, p, key, false);
}

void CpuBackend::dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t key) {
  check_dropout_p("dropout_backward", p);
  if (!dx) return;
  dropout_apply(*pool_, use_avx2_, dy, dx, n, p, key, true);
}

}  // namespace ps
