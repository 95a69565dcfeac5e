#include "model/linear.h"

#include "methods/lora.h"

namespace ps {

void linear_forward(Backend& be, const Linear& lin, int rows, const float* x, float* y,
                    bool accumulate, const LinearScratch& s) {
  const float beta = accumulate ? 1.0f : 0.0f;
  if (lin.four_bit())
    be.nf4_gemm_nt(rows, x, lin.in, lin.W4, 1.0f, beta, y, lin.out);
  else if (lin.sixteen_bit())
    be.half_gemm_nt(rows, x, lin.in, lin.W16, 1.0f, beta, y, lin.out);
  else
    be.gemm_nt(rows, lin.out, lin.in, 1.0f, x, lin.in, lin.W, lin.in, beta, y, lin.out);
  if (lin.b) be.add_bias(y, lin.b, rows, lin.out);
  if (lin.lora) lora_branch_forward(be, *lin.lora, rows, lin.in, lin.out, x, y, s);
}

void linear_backward(Backend& be, const Linear& lin, int rows, const float* x, const float* dy,
                     float* dx, bool overwrite_dx, const LinearScratch& s) {
  const float beta = overwrite_dx ? 0.0f : 1.0f;
  if (dx && lin.four_bit())
    be.nf4_gemm_nn(rows, dy, lin.out, lin.W4, 1.0f, beta, dx, lin.in);
  else if (dx && lin.sixteen_bit())
    be.half_gemm_nn(rows, dy, lin.out, lin.W16, 1.0f, beta, dx, lin.in);
  else if (dx)
    be.gemm_nn(rows, lin.in, lin.out, 1.0f, dy, lin.out, lin.W, lin.in, beta, dx, lin.in);
  if (lin.dW) be.gemm_tn(lin.out, lin.in, rows, 1.0f, dy, lin.out, x, lin.in, 1.0f, lin.dW, lin.in);
  if (lin.db) be.bias_backward(dy, rows, lin.out, lin.db);
  if (lin.lora) lora_branch_backward(be, *lin.lora, rows, lin.in, lin.out, x, dy, dx, s);
}

}  // namespace ps
