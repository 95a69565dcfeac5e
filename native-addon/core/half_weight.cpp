#include "half_weight.h"

#include <string>

#include "error.h"
#include "weight_gemm_args.h"

namespace ps {

void half_check_gemm_args(const char* op, int M, const HalfWeight& W, int ld_in, int ld_in_min, int ld_out,
                          int ld_out_min, float beta) {
  const char* bad = W.rows < 0 || W.cols < 0            ? "negative weight shape"
                    : W.numel() > 0 && W.data == nullptr ? "the 16-bit weight has no data"
                                                         : nullptr;
  if (bad)
    throw Error(std::string(op) + ": " + bad + " (M=" + std::to_string(M) + ", W=[" + std::to_string(W.rows) + ", " +
                std::to_string(W.cols) + "])");
  check_weight_gemm_args(op, M, W.rows, W.cols, ld_in, ld_in_min, ld_out, ld_out_min, beta);
}

}  // namespace ps
