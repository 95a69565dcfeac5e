// Optimizer steps with torch's arithmetic (torch.optim.AdamW and SGD, the
// single-tensor path), and the squared norm used for gradient clipping.
// Scalars that torch computes in Python (bias corrections, step size) are
// computed here in double and rounded to float where torch hands them to a
// float kernel.
#include <cmath>
#include <string>
#include <vector>

#include "cpu_backend.h"
#include "error.h"
#include "parallel_range.h"
#include "sum_squares_block.h"

namespace ps {

namespace {
// AdamW costs about ten times an add per element (a sqrt, a division, four
// streams), so even a LoRA factor of a few thousand floats is worth a
// hand-off; LoRA's hundreds of small tensors would otherwise run serially.
constexpr size_t kOptimizerChunk = 2048;
}  // namespace

void CpuBackend::adamw_step(float* p, const float* g, float* m, float* v, size_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, int t,
                            float grad_scale) {
  if (t < 1) throw Error("adamw_step: the step count starts at 1, got " + std::to_string(t));
  const double bias1 = 1.0 - std::pow(static_cast<double>(beta1), t);
  const double bias2 = 1.0 - std::pow(static_cast<double>(beta2), t);
  const float decay = static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay);
  const float w1 = static_cast<float>(1.0 - beta1);  // exp_avg.lerp_(grad, 1 - beta1)
  const float w2 = static_cast<float>(1.0 - beta2);  // exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)
  const bool lerp_low = w1 < 0.5f;
  const float neg_step = static_cast<float>(-(static_cast<double>(lr) / bias1));
  const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
  parallel_range(*pool_, n, kOptimizerChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float gi = g[i] * grad_scale;
      const float pi = p[i] * decay;
      // torch's lerp: two forms, split at weight 0.5
      const float mi = lerp_low ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1.0f - w1);
      const float vi = v[i] * beta2 + w2 * gi * gi;
      const float denom = std::sqrt(vi) / bias2_sqrt + eps;
      p[i] = pi + neg_step * mi / denom;
      m[i] = mi;
      v[i] = vi;
    }
  });
}

void CpuBackend::sgd_step(float* p, const float* g, size_t n, float lr, float weight_decay,
                          float grad_scale) {
  parallel_range(*pool_, n, kElementChunk, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      const float d = g[i] * grad_scale + weight_decay * p[i];  // grad.add(param, alpha=wd)
      p[i] = p[i] + (-lr) * d;
    }
  });
}

// Fixed blocks (sum_squares_block.h), then the blocks in order: the result
// does not depend on the thread count.
double CpuBackend::sum_squares(const float* x, size_t n) {
  const size_t blocks = (n + kSumSquaresBlock - 1) / kSumSquaresBlock;
  std::vector<double> part(blocks, 0.0);
  parallel_range(*pool_, blocks, 1, [&](size_t b0, size_t b1) {
    for (size_t blk = b0; blk < b1; ++blk) {
      const size_t len = blk + 1 == blocks ? n - blk * kSumSquaresBlock : kSumSquaresBlock;
      part[blk] = block_sum_squares(x + blk * kSumSquaresBlock, len);
    }
  });
  double sum = 0.0;
  for (double v : part) sum += v;
  return sum;
}

}  // namespace ps
