// The activation arena: every buffer a forward (and backward) pass needs,
// laid out once from the model sizes and the row count (batch x sequence), so
// the memory is known before a step runs and no step allocates. The same
// layout function both sizes the arena (estimate_memory) and hands out the
// pointers (the engine), so the two cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/dims.h"
#include "model/tensor_names.h"

namespace ps {

struct PlanConfig {
  ModelDims dims;
  int rows = 0;             // tokens per step (batch x sequence)
  bool train = false;       // keep what backward needs, plus gradient scratch
  bool checkpoint = false;  // train: keep only layer inputs, one recompute workspace
  int lora_rank[kNumModules] = {};  // rank of module m's adapters in any layer (0: none)
  bool lora_dropout = false;        // dropout on the LoRA branch (training only)
};

// What one decoder layer keeps from forward for backward ([rows, ...] each).
struct LayerActs {
  float* rstd1 = nullptr;  // [rows]
  float* a = nullptr;      // input_layernorm output [rows, D] (shared, recomputed in backward)
  float* q_pre = nullptr;  // qk_norm: q before its norm [rows, Dq]
  float* rstd_q = nullptr; // [rows * Hq]
  float* k_pre = nullptr;  // [rows, Dkv]
  float* rstd_k = nullptr; // [rows * Hkv]
  float* q = nullptr;      // after norm and RoPE [rows, Dq]
  float* k = nullptr;      // [rows, Dkv]
  float* v = nullptr;      // [rows, Dkv]
  float* attn = nullptr;   // attention output [rows, Dq]
  float* lse = nullptr;    // [rows * Hq]
  float* h_mid = nullptr;  // residual after attention [rows, D] (train only)
  float* rstd2 = nullptr;  // [rows]
  float* m = nullptr;      // post_attention_layernorm output [rows, D] (shared with a)
  float* gate = nullptr;   // [rows, F]
  float* up = nullptr;     // [rows, F]
  float* lora_h[kNumModules] = {};  // [rows, rank] per adapted module
};

struct Activations {
  int rows = 0;
  int loss_chunk = 0;  // rows of logits held at once
  int32_t* ids = nullptr;
  int32_t* pos = nullptr;
  int32_t* seg = nullptr;
  int32_t* targets = nullptr;       // shifted labels, -100 where not counted
  std::vector<float*> resid;        // train: L+1 residual states (layer inputs, final); eval: 1
  std::vector<LayerActs> layers;    // train without checkpointing: L; otherwise 1 (reused)
  float* act = nullptr;             // silu(gate) * up [rows, F] (recomputed in backward)
  float* rstd_f = nullptr;          // final norm [rows]
  float* hf = nullptr;              // final norm output [rows, D]
  float* hchunk = nullptr;          // gathered rows of hf [chunk, D]
  float* logits = nullptr;          // [chunk, V], overwritten by dlogits
  // training only
  float* dchunk = nullptr;  // [chunk, D]
  float* dh = nullptr;      // residual gradient [rows, D]
  float* dnorm = nullptr;   // gradient wrt a norm's output [rows, D]
  float* dq = nullptr;      // [rows, Dq]
  float* dk = nullptr;      // [rows, Dkv]
  float* dv = nullptr;      // [rows, Dkv]
  float* dattn = nullptr;   // [rows, Dq] (then q/k pre-norm gradient)
  float* dact = nullptr;    // [rows, F]
  float* dup = nullptr;     // [rows, F]   (dgate goes to act, free by then)
  float* lora_dh = nullptr; // [rows, max rank]
  float* dropped = nullptr;   // [rows, max in] dropout(x) of the LoRA branch
  float* d_dropped = nullptr; // [rows, max in]
  float* lora_tmp = nullptr;  // eval: [rows, max rank] H scratch
};

class ActivationPlan {
 public:
  explicit ActivationPlan(const PlanConfig& config);
  const PlanConfig& config() const { return config_; }
  size_t bytes() const { return bytes_; }
  // Pointers into an arena of bytes() bytes starting at base (64-byte aligned).
  Activations bind(void* base) const;

 private:
  PlanConfig config_;
  size_t bytes_ = 0;
};

// Rows of logits computed at once: bounded so [chunk, V] stays near 32 MiB.
int loss_chunk_rows(int rows, int vocab);

}  // namespace ps
