// The attention block kernels compiled with AVX2/FMA (this folder gets
// -mavx2 -mfma); attention.cpp calls them only after the run-time CPU check.
#include "backend/cpu/attention_kernels.h"

namespace ps {

void attention_forward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  attn_forward_unit(a, u, scratch);
}
void attention_backward_unit_avx2(const AttnProblem& a, const AttnUnit& u, float* dk, float* dv,
                                  float* scratch) {
  attn_backward_unit(a, u, dk, dv, scratch);
}
void attention_forward_single_avx2(const AttnProblem& a, int b, int h0, int h1, float* scratch) {
  attn_forward_single(a, b, h0, h1, scratch);
}

}  // namespace ps
