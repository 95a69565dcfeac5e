// bf16 activations (Backend::bf16_activations, activations.h Bf16Kept): the
// products a layer keeps for backward are rounded to bf16 once, where they
// are made (the rounding points are listed in backend.h), so forward goes on
// with exactly the values backward will read. A training plan with a set per
// layer keeps their 16 bits (half the bytes) and restores them into one
// shared fp32 working set before the layer's backward: a bf16 value widens
// to fp32 exactly, so the restore is bit-exact. Checkpointing keeps nothing
// per layer (it recomputes), QLoRA's shared attention part neither.
#include "model/blocks.h"

namespace ps {

void keep_product(const PassContext& c, float* x, uint16_t* kept, size_t n) {
  if (c.bf16_activations) c.be.bf16_round(x, kept, n);
}

void restore_product(const PassContext& c, const uint16_t* kept, float* x, size_t n) {
  if (kept) c.be.half_to_float(kept, true, x, n);
}

}  // namespace ps
