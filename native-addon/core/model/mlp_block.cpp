// The MLP half of a decoder layer (Hugging Face LlamaMLP): post_attention
// layernorm, SwiGLU down(silu(gate(m)) * up(m)), residual.
#include "methods/lora.h"
#include "model/blocks.h"

namespace ps {

void mlp_block_forward(const PassContext& c, int layer, const LayerParams& p, const float* h,
                       float* h_out, LayerActs& s) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  const int R = c.rows;
  const Linear* lin = p.lin;
  be.rmsnorm_forward(h, p.ln2, s.m, s.rstd2, R, d.D, c.eps);
  linear_forward(be, lin[kGate], R, s.m, s.gate, false, linear_scratch(c, s, lin[kGate], layer, kGate));
  linear_forward(be, lin[kUp], R, s.m, s.up, false, linear_scratch(c, s, lin[kUp], layer, kUp));
  keep_product(c, s.gate, s.kept.gate, static_cast<size_t>(R) * d.F);
  keep_product(c, s.up, s.kept.up, static_cast<size_t>(R) * d.F);
  float* act = c.arena->act;
  if (!h_out) {
    // A checkpointing recompute: backward recomputes the product itself, but
    // down_proj's LoRA H must be rebuilt exactly as forward made it. The
    // branch's output goes to a scratch buffer that is free at this point.
    const Linear& down = lin[kDown];
    if (down.lora) {
      be.swiglu_forward(s.gate, s.up, act, static_cast<size_t>(R) * d.F);
      lora_branch_forward(be, *down.lora, R, down.in, down.out, act, c.arena->dnorm,
                          linear_scratch(c, s, down, layer, kDown));
    }
    return;
  }
  be.swiglu_forward(s.gate, s.up, act, static_cast<size_t>(R) * d.F);
  if (h_out != h) be.copy(h_out, h, static_cast<size_t>(R) * d.D);
  linear_forward(be, lin[kDown], R, act, h_out, true, linear_scratch(c, s, lin[kDown], layer, kDown));
}

void mlp_block_backward(const PassContext& c, int layer, const LayerParams& p, const float* h,
                        const LayerActs& s, float* dh) {
  Backend& be = c.be;
  const ModelDims& d = c.d;
  Activations& g = *c.arena;
  const int R = c.rows;
  const size_t n = static_cast<size_t>(R) * d.F;
  const Linear* lin = p.lin;
  restore_product(c, s.kept.gate, s.gate, n);
  restore_product(c, s.kept.up, s.up, n);

  // down_proj's input is recomputed (cheap) rather than kept per layer.
  be.swiglu_forward(s.gate, s.up, g.act, n);
  linear_backward(be, lin[kDown], R, g.act, dh, g.dact, true,
                  linear_scratch(c, s, lin[kDown], layer, kDown));
  float* dgate = g.act;  // the product is no longer needed
  be.fill(dgate, 0.0f, n);
  be.fill(g.dup, 0.0f, n);
  be.swiglu_backward(s.gate, s.up, g.dact, dgate, g.dup, n);

  // The norm's output is not kept per layer (activations.h): recompute it.
  be.rmsnorm_forward(h, p.ln2, s.m, s.rstd2, R, d.D, c.eps);
  linear_backward(be, lin[kGate], R, s.m, dgate, g.dnorm, true,
                  linear_scratch(c, s, lin[kGate], layer, kGate));
  linear_backward(be, lin[kUp], R, s.m, g.dup, g.dnorm, false,
                  linear_scratch(c, s, lin[kUp], layer, kUp));
  be.rmsnorm_backward(g.dnorm, h, p.ln2, s.rstd2, R, d.D, dh, p.dln2);
}

}  // namespace ps
