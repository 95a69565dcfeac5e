// The attention block kernels compiled with AVX2/FMA (this folder gets
// -mavx2 -mfma); attention.cpp calls them only after the run-time CPU check.
#include "backend/cpu/attention_kernels.h"

namespace ps {

// Register tile: 4 x 16 floats = 8 YMM accumulators.
void attention_forward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  attn_forward_unit<4, 16>(a, u, scratch);
}
void attention_backward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                                  float* scratch) {
  attn_backward_unit<4, 16>(a, u, dk, dv, scratch);
}

}  // namespace ps
