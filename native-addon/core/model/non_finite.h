// Counting NaN / Inf values in a model's tensors, as they are stored (fp32,
// IEEE half, bfloat16). Used only once something came out non-finite (a loss,
// a gradient norm, logits): the engine then names the tensors that hold such
// values (Engine::non_finite_tensors), so a damaged model file or adapter is
// told apart from a diverging run. Never on the happy path: a full scan of an
// 8B model reads 16 GB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ps {

struct NonFiniteCount {
  uint64_t nan = 0, inf = 0;
  bool any() const { return nan != 0 || inf != 0; }
  NonFiniteCount& operator+=(const NonFiniteCount& o) {
    nan += o.nan, inf += o.inf;
    return *this;
  }
};

NonFiniteCount count_non_finite(const float* x, size_t n);
// 16-bit values by their bits: exponent all ones (f16 0x7c00, bf16 0x7f80),
// a nonzero mantissa is NaN, a zero one Inf.
NonFiniteCount count_non_finite_half(const uint16_t* x, size_t n, bool bf16);

// One tensor holding non-finite values.
struct NonFiniteTensor {
  std::string name;
  bool trainable = false;  // an adapter / trainable tensor (else a base weight)
  uint64_t nan = 0, inf = 0;
};

}  // namespace ps
