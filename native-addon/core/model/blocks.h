// The decoder layer's two blocks (attention, MLP) and the loss head, each as
// a forward / backward pair over buffers the caller lays out (activations.h).
// Forward writes what backward reads into a LayerActs; backward accumulates
// the residual gradient dh in place (dh enters as the gradient wrt the
// block's output and leaves as the gradient wrt its input).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "backend.h"
#include "engine.h"
#include "model/activations.h"
#include "model/dims.h"
#include "model/linear.h"

namespace ps {

// Everything a layer reads but does not own: norms and the seven linears.
struct LayerParams {
  const float* ln1 = nullptr;  // input_layernorm [D]
  float* dln1 = nullptr;
  const float* ln2 = nullptr;  // post_attention_layernorm [D]
  float* dln2 = nullptr;
  const float* q_norm = nullptr;  // Qwen3 [head_dim]
  float* dq_norm = nullptr;
  const float* k_norm = nullptr;
  float* dk_norm = nullptr;
  Linear lin[kNumModules];
};

struct HeadParams {
  const float* norm = nullptr;  // model.norm [D]
  float* dnorm = nullptr;
  const float* W = nullptr;  // lm_head [V, D] (the embedding when tied)
  float* dW = nullptr;
  // Or the same table in 16 bits (W == nullptr, frozen), through the 16-bit
  // GEMMs (backend.h half_gemm_nt / half_gemm_nn): nothing held widened.
  const uint16_t* W16 = nullptr;
  bool W16_bf16 = false;
};

// The state of one pass shared by every block call.
struct PassContext {
  Backend& be;
  const ModelDims& d;
  float eps = 0;
  int B = 0, T = 0, rows = 0;
  const int32_t* pos = nullptr;  // backend copies of the batch
  const int32_t* seg = nullptr;
  const float* rope_cos = nullptr;
  const float* rope_sin = nullptr;
  bool train = false;        // dropout active (activations are kept either way)
  // The backend computes in bf16 (Backend::bf16_activations): products are
  // rounded to bf16 where they are made (keep_product).
  bool bf16_activations = false;
  uint64_t step_key = 0;     // dropout key of this pass: (seed, counter)
  Activations* arena = nullptr;  // shared scratch (gradients, dropout buffers)
  // Prefix tuning (training / evaluation; a decoding pass has the prefix in
  // its KV cache instead): `prefix` leading key/value positions per batch
  // row, read from the table [prefix, L * 2 * Dkv] (layer l: keys at column
  // 2l * Dkv, values at (2l + 1) * Dkv), used as stored (no RoPE).
  int prefix = 0;
  const float* prefix_table = nullptr;
  float* dprefix_table = nullptr;  // accumulates the table's gradient (nullptr: frozen)
};

// Where a decoding pass writes this layer's new keys/values: a cache of
// `past` positions already filled, room for rows more.
struct KvView {
  float* k = nullptr;  // [past + rows, Dkv]
  float* v = nullptr;
  int past = 0;
};

// bf16 activations (bf16_products.cpp): x[0, n) rounds to bf16 in place and
// its bits go to `kept` (nullptr: the plan does not keep them); nothing in fp32.
void keep_product(const PassContext& c, float* x, uint16_t* kept, size_t n);
// Before a layer's backward: its kept bits widened back into the working
// buffer x (nothing when kept is nullptr: x holds the layer's own values).
void restore_product(const PassContext& c, const uint16_t* kept, float* x, size_t n);

LinearScratch linear_scratch(const PassContext& c, const LayerActs& s, const Linear& lin, int layer,
                             int module);

// h_out = x + o_proj(attention(rope(q(norm(x))), k, v)); h_out may equal x (no copy then).
void attention_block_forward(const PassContext& c, int layer, const LayerParams& p, const float* x,
                             float* h_out, LayerActs& s, const KvView* kv);
// dh: gradient wrt h_out in, wrt x out (when need_dx; otherwise dh is left as is).
void attention_block_backward(const PassContext& c, int layer, const LayerParams& p, const float* x,
                              const LayerActs& s, float* dh, bool need_dx);

// h_out = h + down(silu(gate(norm(h))) * up(norm(h))). h_out == nullptr: a
// checkpointing recompute, which stops after gate/up (and down_proj's LoRA H).
void mlp_block_forward(const PassContext& c, int layer, const LayerParams& p, const float* h,
                       float* h_out, LayerActs& s);
void mlp_block_backward(const PassContext& c, int layer, const LayerParams& p, const float* h,
                        const LayerActs& s, float* dh);

// Rows whose next-token loss counts, as [first, first + count) runs; the
// arena's targets hold their labels in the same order (compacted).
using RowRuns = std::vector<std::pair<int, int>>;

// Final norm, lm_head and cross-entropy over the counted rows only, in chunks
// so [rows, V] logits never exist at once. With backward: accumulates into
// the head's trainable gradients and OVERWRITES dh with the gradient wrt h.
LossResult loss_head(const PassContext& c, const HeadParams& p, const float* h, const RowRuns& runs,
                     float grad_scale, bool backward, float* dh);
// logits[n, V] = x[n, D] · lm_headᵀ (a 16-bit head through half_gemm_nt: the
// same bits an fp32 GEMM on the widened table gives).
void head_logits(const PassContext& c, const HeadParams& p, const float* x, int n, float* logits);
// Vocabulary rows of the head per input-gradient product: dh = dlogits W
// sums over the vocabulary, and a GEMM packs its whole op(A) (here the
// [rows, V] dlogits) up front, so one product over V = 49152 would hold a
// 48 MiB packed copy. In slices of 2048 rows (accumulated in order) it holds
// a few MiB. The fp32 and the 16-bit head take the same slices, so on the CPU
// a BF16 model and its F32 copy give the same bits (a GPU's 16-bit GEMMs may
// split a slice further: there the two agree to fp32 rounding).
constexpr int kHeadGradRows = 2048;  // (the memory estimate sizes the CPU GEMMs' scratch by it)

// dx[n, D] = dlogits[n, V] · lm_head (overwritten), in slices of the
// vocabulary (a 16-bit head through half_gemm_nn: the same bits as the fp32
// GEMM on the widened table).
void head_input_grad(const PassContext& c, const HeadParams& p, const float* dlogits, int n, float* dx);
// Logits [V] of one row of h (decoding), written to the arena's logits buffer.
const float* head_logits_row(const PassContext& c, const HeadParams& p, const float* h, int row);

}  // namespace ps
