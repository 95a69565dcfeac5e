#include "weight_gemm_args.h"

#include <string>

#include "error.h"

namespace ps {

void check_weight_gemm_args(const char* op, int M, int64_t rows, int64_t cols, int ld_in, int ld_in_min, int ld_out,
                            int ld_out_min, float beta) {
  auto fail = [&](const std::string& what) {
    throw Error(std::string(op) + ": " + what + " (M=" + std::to_string(M) + ", W=[" + std::to_string(rows) + ", " +
                std::to_string(cols) + "])");
  };
  if (M < 0) fail("negative M");
  if (beta != 0.0f && beta != 1.0f) fail("beta must be 0 or 1, got " + std::to_string(beta));
  if (M > 0 && ld_in < ld_in_min)
    fail("input row stride " + std::to_string(ld_in) + " is below " + std::to_string(ld_in_min));
  if (M > 0 && ld_out < ld_out_min)
    fail("output row stride " + std::to_string(ld_out) + " is below " + std::to_string(ld_out_min));
}

}  // namespace ps
