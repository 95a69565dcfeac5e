#include "methods/dora.h"

#include <cmath>

#include "error.h"

namespace ps {

std::vector<double> weight_row_squares(Backend& be, const Linear& lin) {
  const size_t rows = static_cast<size_t>(lin.out), cols = static_cast<size_t>(lin.in);
  float* widened = nullptr;
  const float* w = lin.W;
  if (lin.four_bit() || lin.sixteen_bit()) {
    widened = static_cast<float*>(be.alloc(rows * cols * sizeof(float)));
    if (lin.four_bit())
      be.nf4_dequantize(lin.W4, widened);
    else
      be.half_to_float(lin.W16.data, lin.W16.bf16, widened, rows * cols);
    w = widened;
  }
  std::vector<const float*> row_ptrs(rows);
  std::vector<size_t> lengths(rows, cols);
  for (size_t j = 0; j < rows; ++j) row_ptrs[j] = w + j * cols;
  std::vector<double> out(rows);
  try {
    be.sum_squares_many(row_ptrs.data(), lengths.data(), static_cast<int>(rows), out.data());
  } catch (...) {
    if (widened) be.release(widened);
    throw;
  }
  if (widened) be.release(widened);
  return out;
}

size_t dora_refresh_scratch_floats(int rank, int out) {
  const size_t r = static_cast<size_t>(rank), n = static_cast<size_t>(out);
  return r * n + r * r + n * r;
}

void dora_refresh(Backend& be, const Linear& lin, const LoraAdapter& a, const float* w_sq, float* inv_norm,
                  float* factor, float* scratch) {
  const int r = a.rank, in = lin.in, out = lin.out;
  float* PT = scratch;                                        // A W^T as [r, out]: the base product of A's rows
  float* C = PT + static_cast<size_t>(r) * out;               // A A^T [r, r]
  float* BC = C + static_cast<size_t>(r) * r;                 // B (A A^T) [out, r]
  base_forward(be, lin, r, a.A, 1.0f, 0.0f, PT);
  be.gemm_nt(r, r, in, 1.0f, a.A, in, a.A, in, 0.0f, C, r);
  be.gemm_nn(out, r, r, 1.0f, a.B, r, C, r, 0.0f, BC, r);
  be.dora_norm(out, r, a.scale, w_sq, PT, a.B, BC, a.m, inv_norm, factor);
}

// Forward. Without dropout: t = W x + s B A x, y (+)= (m/n) t + b, the GEMMs
// of plain LoRA. With dropout the frozen product of the undropped input stays
// as it is and the dropped input adds (m/n - 1) W xd + (m/n) s B A xd: one
// more base product, as PEFT computes it.
void dora_linear_forward(Backend& be, const Linear& lin, int rows, const float* x, float* y, bool accumulate,
                         const LinearScratch& s) {
  const LoraAdapter& a = *lin.lora;
  const int in = lin.in, out = lin.out;
  float* t = s.dora_t;
  if (!t) throw Error("DoRA forward: the activation plan has no DoRA buffer (an engine bug)");
  if (!s.dropout_active) {
    base_forward(be, lin, rows, x, 1.0f, 0.0f, t);
    be.lora_forward(rows, out, in, a.rank, a.scale, x, a.A, a.B, s.lora_h, t);
    be.scale_columns(t, a.factor, 0.0f, rows, out, accumulate ? 1.0f : 0.0f, y);
    if (lin.b) be.add_bias(y, lin.b, rows, out);
    return;
  }
  base_forward(be, lin, rows, x, 1.0f, accumulate ? 1.0f : 0.0f, y);
  if (lin.b) be.add_bias(y, lin.b, rows, out);
  be.dropout_forward(x, s.dropped, static_cast<size_t>(rows) * in, a.dropout, s.dropout_key);
  base_forward(be, lin, rows, s.dropped, 1.0f, 0.0f, t);
  be.scale_columns(t, a.factor, -1.0f, rows, out, 1.0f, y);
  be.fill(t, 0.0f, static_cast<size_t>(rows) * out);
  be.lora_forward(rows, out, in, a.rank, a.scale, s.dropped, a.A, a.B, s.lora_h, t);
  be.scale_columns(t, a.factor, 0.0f, rows, out, 1.0f, y);
}

// Backward, with g = dy and f = m/n (n constant):
//   dm += (1/n) colsum(g . (W xd + s H B^T))   (W xd recomputed: not kept)
//   without dropout: g' = f g flows through W and the LoRA branch;
//   with dropout: g flows through W x; (f - 1) g through W and f g through
//   the LoRA branch reach xd, then the dropout mask.
void dora_linear_backward(Backend& be, const Linear& lin, int rows, const float* x, const float* dy, float* dx,
                          bool overwrite_dx, const LinearScratch& s) {
  const LoraAdapter& a = *lin.lora;
  const int in = lin.in, out = lin.out, r = a.rank;
  float* t = s.dora_t;
  float* g = s.dora_g;
  if (!t || !g) throw Error("DoRA backward: the activation plan has no DoRA buffers (an engine bug)");
  if (lin.db) be.bias_backward(dy, rows, out, lin.db);
  const float* xd = x;
  if (s.dropout_active) {
    be.dropout_forward(x, s.dropped, static_cast<size_t>(rows) * in, a.dropout, s.dropout_key);
    xd = s.dropped;
  }
  // The magnitude's gradient, from the pre-scale product (s.lora_h is H = xd A^T from forward).
  base_forward(be, lin, rows, xd, 1.0f, 0.0f, t);
  be.gemm_nt(rows, out, r, a.scale, s.lora_h, r, a.B, r, 1.0f, t, out);
  be.column_dot(dy, t, a.inv_norm, rows, out, a.dm);
  if (!s.dropout_active) {
    be.scale_columns(dy, a.factor, 0.0f, rows, out, 0.0f, g);
    if (dx) base_backward_input(be, lin, rows, g, 1.0f, overwrite_dx ? 0.0f : 1.0f, dx);
    be.lora_backward(rows, out, in, r, a.scale, x, a.A, a.B, s.lora_h, g, s.lora_dh, a.dA, a.dB, dx);
    return;
  }
  if (dx) {
    base_backward_input(be, lin, rows, dy, 1.0f, overwrite_dx ? 0.0f : 1.0f, dx);
    be.scale_columns(dy, a.factor, -1.0f, rows, out, 0.0f, g);
    base_backward_input(be, lin, rows, g, 1.0f, 0.0f, s.d_dropped);
  }
  be.scale_columns(dy, a.factor, 0.0f, rows, out, 0.0f, g);
  be.lora_backward(rows, out, in, r, a.scale, xd, a.A, a.B, s.lora_h, g, s.lora_dh, a.dA, a.dB,
                   dx ? s.d_dropped : nullptr);
  if (dx) be.dropout_backward(s.d_dropped, dx, static_cast<size_t>(rows) * in, a.dropout, s.dropout_key);
}

}  // namespace ps
