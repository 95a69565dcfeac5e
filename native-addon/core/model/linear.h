// The linear layer of the model, y = x W^T (+ b), with the hook where a
// method adds its trainable branch (LoRA). The base matmul always runs on the
// frozen (or fully trainable) W; gradients of W and b are formed only when
// their gradient pointers are set. The base weight is fp32 (W), 4-bit NF4
// (W4, QLoRA) or 16-bit (W16: a frozen base from a BF16 / F16 checkpoint,
// LoRA / prompt / prefix tuning): a 4-bit or 16-bit weight is always frozen;
// the input gradient still flows through it (dx = dy W, W decoded tile by
// tile; a 16-bit weight gives the fp32 weight's bits exactly).
#pragma once

#include <cstdint>

#include "backend.h"
#include "half_weight.h"
#include "quant/nf4_weight.h"

namespace ps {

// One LoRA adapter on one linear: y += scale * B A dropout(x).
struct LoraAdapter {
  int rank = 0;
  float scale = 0;
  float dropout = 0;
  float* A = nullptr;  // [rank, in]
  float* B = nullptr;  // [out, rank]
  float* dA = nullptr;
  float* dB = nullptr;
  // DoRA (methods/dora.h): the trained magnitude m [out] and its gradient;
  // inv_norm = 1 / ||W + s B A||_row and factor = m * inv_norm [out], made
  // from the current A, B, m before a pass (detached: no gradient flows
  // through the norm). nullptr m: plain LoRA.
  float* m = nullptr;
  float* dm = nullptr;
  const float* inv_norm = nullptr;
  const float* factor = nullptr;
  bool dora() const { return m != nullptr; }
};

struct Linear {
  int in = 0, out = 0;
  const float* W = nullptr;  // [out, in] fp32, or nullptr when W4 or W16 holds the weight
  Nf4Weight W4;              // [out, in] in 4 bits (W4.codes == nullptr: not quantized)
  HalfWeight W16;            // [out, in] in 16 bits (W16.data == nullptr: not 16-bit)
  float* dW = nullptr;       // nullptr: frozen (always for a 4-bit or 16-bit weight)
  const float* b = nullptr;  // [out] or nullptr
  float* db = nullptr;
  const LoraAdapter* lora = nullptr;
  bool four_bit() const { return W4.codes != nullptr; }
  bool sixteen_bit() const { return W16.data != nullptr; }
};

// Per-call buffers of the LoRA branch (unused when the linear has none).
struct LinearScratch {
  float* lora_h = nullptr;     // [rows, rank]: H = dropout(x) A^T, kept for backward
  float* dropped = nullptr;    // [rows, in]: dropout(x), recomputed in backward
  float* d_dropped = nullptr;  // [rows, in]: gradient wrt dropout(x)
  float* lora_dh = nullptr;    // [rows, rank]: backward scratch
  float* dora_t = nullptr;     // DoRA: [rows, out] W x + s B A x (or with dropout its parts), not kept
  float* dora_g = nullptr;     // DoRA, backward: [rows, out] the gradient scaled per column
  bool dropout_active = false; // training mode and p > 0
  uint64_t dropout_key = 0;    // keyed by (seed, step, layer, module)
};

// The frozen (or fully trained) product alone, whichever way W is held:
// y = alpha x W^T + beta y, and dx = alpha dy W + beta dx (beta in {0, 1}).
void base_forward(Backend& be, const Linear& lin, int rows, const float* x, float alpha, float beta, float* y);
void base_backward_input(Backend& be, const Linear& lin, int rows, const float* dy, float alpha, float beta,
                         float* dx);

// y = x W^T + b (+ LoRA); accumulate: y += instead of y = (a residual add).
void linear_forward(Backend& be, const Linear& lin, int rows, const float* x, float* y,
                    bool accumulate, const LinearScratch& s);
// dx (+)= dy W (skipped when dx is nullptr; overwrite_dx: the first contributor
// writes instead of adding, saving a fill); dW += dy^T x; db += sum dy; LoRA dA, dB.
void linear_backward(Backend& be, const Linear& lin, int rows, const float* x, const float* dy,
                     float* dx, bool overwrite_dx, const LinearScratch& s);

}  // namespace ps
