// The attention block kernels compiled with AVX-512F on top of this folder's
// AVX2/FMA flags (CMakeLists.txt adds -mavx512f for this file alone, where
// the compiler is GCC-style; elsewhere it builds the AVX2 tiles again):
// 8 x 32 register tiles of zmm accumulators (block_gemm.h) and a 16-lane
// exp. attention.cpp calls them only when CpuBackend::use_avx512_attention()
// (the CPU and OS support AVX-512F).
// GCC 12 reports the deliberately undefined pass-through operand inside its
// own unmasked AVX-512 intrinsics (_mm512_max_ps, ...) as maybe-uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "backend/cpu/attention_kernels.h"

namespace ps {

void attention_forward_unit_avx512(const AttnProblem& a, const AttnUnit& u, float* scratch) {
  attn_forward_unit(a, u, scratch);
}
void attention_backward_unit_avx512(const AttnProblem& a, const AttnUnit& u, float* dk,
                                    float* dv, float* scratch) {
  attn_backward_unit(a, u, dk, dv, scratch);
}
void attention_forward_single_avx512(const AttnProblem& a, int b, int h0, int h1, float* scratch) {
  attn_forward_single(a, b, h0, h1, scratch);
}

}  // namespace ps
