// Causal grouped-query attention on the CUDA backend: the argument checks and
// the choice of kernels. Two implementations of the same contract
// (backend.h AttnShape; the CPU's visibility, padding and accumulation rules):
//   flash      (attention_flash.cu, the default): query / key tiles staged in
//              shared memory, online softmax, two deterministic backward passes;
//   reference  (attention_reference.cu): a warp per query or key, the
//              readable version the tests compare the flash kernels with.
// PEFT_STUDIO_ATTENTION=reference|flash (read by the constructor) or
// set_attention_kernels() (tests) chooses; an unknown value is an error.
// The reference kernels are fp32 only: with bf16 attention on (bf16 precision
// unless set_attention_bf16(false) / PEFT_STUDIO_ATTENTION_BF16=0; attention_flash.cu
// says what is rounded) the flash kernels always run.
#include <cstdlib>
#include <string>

#include "cuda_backend.h"
#include "cuda_common.cuh"

namespace ps {

namespace {

// The kernels keep at most 256 head-dim values per query (flash: 8 threads x
// 32 values; reference: 32 lanes x 8).
constexpr int kMaxHeadDim = 256;

void check_args(const char* op, const AttnShape& s, const void* q, const void* k, const void* v, const void* seg) {
  auto bad = [&](const std::string& what) {
    throw Error(std::string(op) + ": " + what + " (B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                " P=" + std::to_string(s.P) + " Hq=" + std::to_string(s.Hq) + " Hkv=" + std::to_string(s.Hkv) +
                " D=" + std::to_string(s.D) + ")");
  };
  if (s.B < 1 || s.T < 1 || s.D < 1) bad("batch, sequence length and head dim must be positive");
  if (s.P < 0) bad("the prefix length P must not be negative");
  if (s.Hq < 1 || s.Hkv < 1 || s.Hq % s.Hkv != 0) bad("query heads must be a positive multiple of key/value heads");
  if (!q || !k || !v || !seg) bad("q, k, v and the segment ids are required");
  if (s.D > kMaxHeadDim)
    bad("the CUDA attention kernels support head dims up to " + std::to_string(kMaxHeadDim));
}

}  // namespace

CudaBackend::AttentionKernels CudaBackend::attention_kernels_from_env() {
  const char* e = std::getenv("PEFT_STUDIO_ATTENTION");
  if (!e || !*e || std::string(e) == "flash") return AttentionKernels::Flash;
  if (std::string(e) == "reference") return AttentionKernels::Reference;
  throw Error("PEFT_STUDIO_ATTENTION=" + std::string(e) +
              ": unknown attention kernels; use \"flash\" (the default) or \"reference\"");
}

bool CudaBackend::attention_bf16_from_env() {
  const char* e = std::getenv("PEFT_STUDIO_ATTENTION_BF16");
  if (!e || !*e || std::string(e) == "1") return true;
  if (std::string(e) == "0") return false;
  throw Error("PEFT_STUDIO_ATTENTION_BF16=" + std::string(e) + ": use 1 (bf16 attention in bf16 precision, the default) or 0 (fp32 attention)");
}

void CudaBackend::attention_forward(const AttnShape& s, const float* q, const float* k, const float* v,
                                    const int32_t* seg, float scale, float* out, float* lse) {
  check_args("attention_forward", s, q, k, v, seg);
  if (!out || !lse) throw Error("attention_forward: out and lse are required");
  if (attention_kernels_ == AttentionKernels::Reference && !attention_rounds_bf16())
    attention_forward_reference(s, q, k, v, seg, scale, out, lse);
  else
    attention_forward_flash(s, q, k, v, seg, scale, out, lse);
}

void CudaBackend::attention_backward(const AttnShape& s, const float* q, const float* k, const float* v,
                                     const int32_t* seg, float scale, const float* out, const float* lse,
                                     const float* dout, float* dq, float* dk, float* dv) {
  check_args("attention_backward", s, q, k, v, seg);
  if (!out || !lse || !dout) throw Error("attention_backward: out, lse and dout are required");
  if (!dq && !dk && !dv) return;
  if (attention_kernels_ == AttentionKernels::Reference && !attention_rounds_bf16())
    attention_backward_reference(s, q, k, v, seg, scale, out, lse, dout, dq, dk, dv);
  else
    attention_backward_flash(s, q, k, v, seg, scale, out, lse, dout, dq, dk, dv);
}

}  // namespace ps
