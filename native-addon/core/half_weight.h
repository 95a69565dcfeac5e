// A frozen base weight held in 16 bits, as a BF16 / F16 checkpoint stores it:
// LoRA, prompt and prefix tuning never change the base linears, so they stay
// at 2 bytes a value (in place in the file mapping when aligned) and the
// 16-bit GEMMs of backend.h widen tiles to fp32 as they pack them. Widening
// is exact (every bfloat16 and IEEE half is an fp32), so the products equal
// the fp32 GEMM on the widened weight bit for bit.
//
// The struct only points at memory; the weight store (or a test) owns it.
#pragma once

#include <cstdint>

namespace ps {

struct HalfWeight {
  const uint16_t* data = nullptr;  // [rows, cols] row-major, backend memory
  bool bf16 = false;               // bfloat16, else IEEE half
  int rows = 0;                    // out_features (N of the forward product)
  int cols = 0;                    // in_features (K of the forward product)
  int64_t numel() const { return static_cast<int64_t>(rows) * cols; }
};

// Throws ps::Error naming `op` on a bad weight (negative shape, no data) or
// bad arguments: M < 0, beta not 0/1, a row stride below its minimum.
void half_check_gemm_args(const char* op, int M, const HalfWeight& W, int ld_in, int ld_in_min, int ld_out,
                          int ld_out_min, float beta);

}  // namespace ps
