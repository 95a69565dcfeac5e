// The argument rules every GEMM against a stored weight shares (the NF4 and
// the 16-bit ones, on every backend): M >= 0, beta 0 or 1, row strides of the
// input and output at least their minimum. Throws ps::Error naming `op`, M
// and the weight's [rows, cols]. The weight's own checks stay with its type.
#pragma once

#include <cstdint>

namespace ps {

void check_weight_gemm_args(const char* op, int M, int64_t rows, int64_t cols, int ld_in, int ld_in_min, int ld_out,
                            int ld_out_min, float beta);

}  // namespace ps
