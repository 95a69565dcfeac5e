#include "model/linear.h"

#include "methods/dora.h"
#include "methods/lora.h"

namespace ps {

void base_forward(Backend& be, const Linear& lin, int rows, const float* x, float alpha, float beta, float* y) {
  if (lin.four_bit())
    be.nf4_gemm_nt(rows, x, lin.in, lin.W4, alpha, beta, y, lin.out);
  else if (lin.sixteen_bit())
    be.half_gemm_nt(rows, x, lin.in, lin.W16, alpha, beta, y, lin.out);
  else
    be.gemm_nt(rows, lin.out, lin.in, alpha, x, lin.in, lin.W, lin.in, beta, y, lin.out);
}

void base_backward_input(Backend& be, const Linear& lin, int rows, const float* dy, float alpha, float beta,
                         float* dx) {
  if (lin.four_bit())
    be.nf4_gemm_nn(rows, dy, lin.out, lin.W4, alpha, beta, dx, lin.in);
  else if (lin.sixteen_bit())
    be.half_gemm_nn(rows, dy, lin.out, lin.W16, alpha, beta, dx, lin.in);
  else
    be.gemm_nn(rows, lin.in, lin.out, alpha, dy, lin.out, lin.W, lin.in, beta, dx, lin.in);
}

void linear_forward(Backend& be, const Linear& lin, int rows, const float* x, float* y,
                    bool accumulate, const LinearScratch& s) {
  if (lin.lora && lin.lora->dora()) {
    dora_linear_forward(be, lin, rows, x, y, accumulate, s);
    return;
  }
  base_forward(be, lin, rows, x, 1.0f, accumulate ? 1.0f : 0.0f, y);
  if (lin.b) be.add_bias(y, lin.b, rows, lin.out);
  if (lin.lora) lora_branch_forward(be, *lin.lora, rows, lin.in, lin.out, x, y, s);
}

void linear_backward(Backend& be, const Linear& lin, int rows, const float* x, const float* dy,
                     float* dx, bool overwrite_dx, const LinearScratch& s) {
  if (lin.lora && lin.lora->dora()) {
    dora_linear_backward(be, lin, rows, x, dy, dx, overwrite_dx, s);
    return;
  }
  if (dx) base_backward_input(be, lin, rows, dy, 1.0f, overwrite_dx ? 0.0f : 1.0f, dx);
  if (lin.dW) be.gemm_tn(lin.out, lin.in, rows, 1.0f, dy, lin.out, x, lin.in, 1.0f, lin.dW, lin.in);
  if (lin.db) be.bias_backward(dy, rows, lin.out, lin.db);
  if (lin.lora) lora_branch_backward(be, *lin.lora, rows, lin.in, lin.out, x, dy, dx, s);
}

}  // namespace ps
