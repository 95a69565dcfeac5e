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
  bool dora = false;                // DoRA adapters: [rows, widest adapted out] buffers (methods/dora.h)
  // train without checkpointing: one attention-block buffer set shared by all
  // layers, recomputed in backward (about 11% more compute for a third less
  // activation memory). On for a 4-bit base, where memory is the point (QLoRA).
  bool share_attention = false;
  // Prefix tuning: every attention call reads prefix_tokens leading key/value
  // positions per batch row, so keys/values are assembled in [batch, prefix +
  // T] buffers; `batch` is the most batch rows a step may have (0 otherwise).
  int prefix_tokens = 0;
  int batch = 0;
  int prefix_hidden = 0;  // prefix_projection's encoder_hidden_size: the MLP's table is computed into the arena
  // The backend computes in bf16 (Backend::bf16_activations): a training plan
  // keeps each layer's q_pre/k_pre, q, k, v, attention output, gate and up in
  // 16 bits (Bf16Kept) and gives them one fp32 working set all layers share.
  bool bf16_activations = false;
};

// bf16 activations: the bits of what a layer's backward reads, [rows, width]
// each as in LayerActs. The model rounds each product to bf16 where it is
// made (Backend::bf16_round), so forward computes on the very values backward
// widens back (exactly) into the shared fp32 buffers. nullptr: not kept in 16
// bits (an fp32 plan, an evaluation plan, a part backward recomputes, or the
// last layer, whose values are still in the working set when backward starts).
struct Bf16Kept {
  uint16_t* q_pre = nullptr;
  uint16_t* k_pre = nullptr;
  uint16_t* q = nullptr;
  uint16_t* k = nullptr;
  uint16_t* v = nullptr;
  uint16_t* attn = nullptr;
  uint16_t* gate = nullptr;
  uint16_t* up = nullptr;
};

// What one decoder layer's forward writes and backward reads ([rows, ...]
// each). With PlanConfig::share_attention only the MLP part (rstd2, gate, up,
// and the LoRA H of gate/up/down) is the layer's own: the attention part
// (rstd1 ... h_mid and the LoRA H of q/k/v/o) is one set every layer shares,
// recomputed in backward from the layer's input (activations.cpp).
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
  Bf16Kept kept;  // bf16 activations: the 16-bit copies (the fp32 pointers above are then shared)
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
  bool shared_attention = false;    // layers share the attention part: backward recomputes it
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
  float* dora_t = nullptr;    // DoRA: [rows, widest adapted out] the pre-scale product (every pass)
  float* dora_g = nullptr;    // DoRA, train: [rows, widest adapted out] the column-scaled gradient
  // prefix tuning: one layer's keys/values with the prefix in front,
  // [batch, prefix + T, Dkv], assembled from the table and the layer's k/v
  // before each attention call (forward and backward), so one set serves all layers
  float* kx = nullptr;
  float* vx = nullptr;
  float* dkx = nullptr;           // train: gradient wrt kx [batch, prefix + T, Dkv]
  float* dvx = nullptr;           // train: gradient wrt vx
  float* prefix_table = nullptr;  // projection: the MLP's output [prefix, L * 2 * Dkv]
  float* prefix_hidden = nullptr; // projection: its tanh layer [prefix, hidden]
  float* dprefix_table = nullptr; // projection, train: gradient wrt the table
  float* dprefix_hidden = nullptr;// projection, train: scratch [prefix, hidden]
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
