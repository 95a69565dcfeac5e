// DoRA (Liu et al. 2024, "weight-decomposed low-rank adaptation") as Hugging
// Face PEFT defines it (use_dora=True, DoraLinearLayer): on each adapted
// linear a trained magnitude m [out] rescales the rows of the LoRA-updated
// weight to m / ||W + s B A||_row, the norm taken as a constant (detached, as
// the paper's section 4.3 and PEFT do):
//   y = W x + b + (m/n - 1) (W xd) + (m/n) s B A xd,   xd = dropout(x)
// which without dropout is y = (m/n) (W x + s B A x) + b. The bias is not
// rescaled. m starts at ||W||_row (B = 0), so a new adapter changes nothing.
//
// W + s B A is never formed: its squared row norm is
//   ||W_j||^2 + 2 s B_j . (A W^T)_:j + s^2 B_j (A A^T) B_j^T
// where ||W_j||^2 is computed once from the frozen W and A W^T is the base
// product run on A's r rows: r rows of the base GEMM per linear, once per
// step (after each optimizer step), not per token.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "model/linear.h"

namespace ps {

// Squared row norms of a linear's base weight, summed in double (its 4-bit or
// 16-bit form widened first, through a temporary fp32 copy of the one weight).
std::vector<double> weight_row_squares(Backend& be, const Linear& lin);

// Floats of the refresh scratch for rank r and widest output `out`:
// A W^T [r, out], A A^T [r, r], B (A A^T) [out, r].
size_t dora_refresh_scratch_floats(int rank, int out);

// inv_norm and factor of `a` from its current A, B and m (dora_norm).
void dora_refresh(Backend& be, const Linear& lin, const LoraAdapter& a, const float* w_sq, float* inv_norm,
                  float* factor, float* scratch);

// linear_forward / linear_backward of a linear whose adapter is DoRA.
void dora_linear_forward(Backend& be, const Linear& lin, int rows, const float* x, float* y, bool accumulate,
                         const LinearScratch& s);
void dora_linear_backward(Backend& be, const Linear& lin, int rows, const float* x, const float* dy, float* dx,
                          bool overwrite_dx, const LinearScratch& s);

}  // namespace ps
