// The binding's contract: what native-addon/binding wraps as NativeEngine / estimateMemory (electron/engine/native.ts).
//
// One Engine holds one model (weights mmapped or converted to fp32; with
// quantization nf4 the seven linears of every decoder block held in 4-bit
// NF4 as bitsandbytes holds them, see QuantizationOptions), at most
// one training method (LoRA, full fine-tuning, or PEFT's prompt tuning /
// prefix tuning), its gradients and optimizer
// state, one activation arena sized from batch x sequence, and a KV cache for
// generation. Every call is synchronous and NOT thread-safe: the binding runs
// them one at a time (in an AsyncWorker for the slow ones). Errors are thrown
// as ps::Error (ps::OutOfMemory for allocations) with a message a user can act on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "methods/prompt_learning_options.h"
#include "model/non_finite.h"
#include "model/spec.h"

namespace ps {

enum class DType { F32, F16, BF16, U8 };  // U8: bitsandbytes' packed 4-bit codes and 8-bit absmax codes

// The non-tensor fields of a bitsandbytes 4-bit weight (its
// "weight.quant_state.bitsandbytes__nf4" JSON, parsed on the Node side).
struct Nf4QuantState {
  int blocksize = 64;
  std::vector<int64_t> shape;      // [out, in] of the original weight
  bool double_quant = false;       // absmax stored as 8-bit codes + nested scales
  int nested_blocksize = 256;
  float nested_offset = 0.0f;
};

// Where one tensor's bytes are in a safetensors file (the Node side parsed the header).
// A weight saved already quantized by bitsandbytes comes as its U8 "…weight"
// tensor with `nf4` set, plus refs to its companions "…weight.absmax",
// "…weight.quant_map" and, with double quantization, "…weight.nested_absmax"
// and "…weight.nested_quant_map" (bitsandbytes' key names, same file or not).
struct WeightRef {
  std::string name;    // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::string file;    // path of the .safetensors file
  uint64_t offset = 0; // absolute byte offset of the data in the file
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::optional<Nf4QuantState> nf4;
};

// QLoRA's base: the seven linears of every decoder block (q, k, v, o, gate,
// up, down: what transformers quantizes under load_in_4bit) held as NF4 with
// one absmax per `blocksize` values, optionally double-quantized (4.127
// bits per weight at blocksize 64). Embeddings, norms, biases and lm_head stay
// as they are. The 4-bit weights are frozen: only a LoRA method trains on
// them. Numerics: PyTorch QLoRA dequantizes to its bf16 compute dtype and
// multiplies in bf16; here the same NF4 values are dequantized to fp32 and
// multiplied in fp32 (the quantized weights are identical, the arithmetic is
// more precise).
struct QuantizationOptions {
  enum class Type { None, Nf4 };
  Type type = Type::None;
  int blocksize = 64;       // 32..4096, a power of two (bitsandbytes)
  bool double_quant = true; // QLoRA's "DQ"
  bool enabled() const { return type != Type::None; }
};

struct EngineOptions {
  // Where the model runs: "cpu" (default), "cuda" (the first GPU) or "cuda:N"
  // (backend_factory.h). "cuda" in a build without the CUDA backend throws.
  std::string device = "cpu";
  // Precision of the dense products (backend_factory.h): "fp32" (default),
  // "bf16" (operands rounded to bfloat16, fp32 accumulation; a CUDA GPU with
  // bf16 tensor cores) or "auto" (bf16 where the device has it, else fp32).
  std::string precision = "fp32";
  int threads = 0;  // <= 0: one per hardware thread (the CPU backend's; a GPU engine's host-side work)
  bool gradient_checkpointing = false;
  uint64_t seed = 0;  // key of the counter-based dropout RNG
  QuantizationOptions quantization;
  // NEFTune (methods/neftune.h): noise on the input embeddings while
  // training, uniform within alpha / sqrt(seq_len * hidden); 0: off.
  float neftune_alpha = 0.0f;
};

enum class LoraInit { Default, Gaussian };  // PEFT init_lora_weights: true / "gaussian"

// Module names a LoRA adapter may target (PEFT target_modules for Llama).
// lora_target_names() lists them in the engine's fixed order.
const std::vector<std::string>& lora_target_names();

struct LoraOptions {
  int rank = 8;
  float alpha = 8.0f;
  float dropout = 0.0f;
  bool rslora = false;                    // scaling alpha/sqrt(r) instead of alpha/r
  std::vector<std::string> targets;       // subset of lora_target_names()
  std::optional<std::vector<int>> layers; // nullopt: all layers (PEFT layers_to_transform)
  LoraInit init = LoraInit::Default;
  uint64_t seed = 0;                      // A's random init
  // DoRA (PEFT use_dora, methods/dora.h): a trained magnitude per output row,
  // "…lora_magnitude_vector" [out] after each module's lora_B, initialised to
  // the base's row norms when set up (the weights must be in place).
  bool dora = false;
};

// One micro-batch, row-major [batch_size, seq_len]. Labels are NOT shifted:
// position t predicts labels[t+1] of the same row; the last position of a row
// predicts nothing. A position t is counted iff labels[t+1] != -100,
// segments[t] >= 0 and segments[t+1] == segments[t] (padding and the boundary
// between two packed sequences contribute nothing). A token attends to earlier
// tokens of its own segment only; segment -1 is padding.
struct Batch {
  int batch_size = 0;
  int seq_len = 0;
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;
  std::vector<int32_t> segments;
  std::vector<int32_t> positions;  // RoPE positions per token
};

struct LossResult {
  double loss_sum = 0;  // sum of per-token cross-entropy over counted tokens (nats)
  int64_t tokens = 0;   // counted tokens
};

struct OptimizerStep {
  enum class Kind { AdamW, Sgd };
  Kind kind = Kind::AdamW;
  float lr = 1e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  // Not applied to biases and norm weights, as HF Trainer exempts them by name
  // (get_decay_parameter_names); DoRA's magnitude is decayed, as there.
  float weight_decay = 0.0f;
  float max_grad_norm = 0.0f; // global-norm clipping threshold; 0 disables clipping
};

struct ParameterInfo {
  std::string name;  // HF base names; LoRA: "model.layers.0.self_attn.q_proj.lora_A.weight"
  std::vector<int64_t> shape;
  bool trainable = false;
};

struct OptimizerTensorState {
  std::string name;
  std::vector<float> m, v;
};

struct OptimizerState {
  int64_t step = 0;  // number of optimizer steps taken (AdamW bias correction uses step+1 next)
  std::vector<OptimizerTensorState> tensors;  // empty for SGD / before the first AdamW step
};

// What the engine holds now. The fields do not overlap: weight_bytes counts
// every parameter once (base weights as fp32 whether mmapped or converted,
// 4-bit linears at their resident size: codes + scales, a 16-bit embedding /
// lm_head of a quantized model at 2 bytes, plus adapter tensors), trainable_bytes the gradients and optimizer state,
// activation_bytes the training/evaluation arena, kv_cache_bytes the
// generation buffers (cache + decode workspace). After a training step:
// weight_bytes == estimate.weight_bytes, trainable_bytes ==
// estimate.gradient_bytes + estimate.optimizer_bytes (AdamW state exists from
// the first AdamW step), activation_bytes == estimate.activation_bytes for the
// largest batch seen. An engine that only evaluates holds the smaller
// evaluation arena.
struct MemoryUsage {
  uint64_t weight_bytes = 0;
  uint64_t quantized_bytes = 0;  // the part of weight_bytes held in 4 bits (codes + scales)
  int64_t quantized_params = 0;  // weights held in 4 bits
  uint64_t trainable_bytes = 0;
  uint64_t activation_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t peak_rss_bytes = 0;  // peak resident set size of the process so far
  // The CPU backend's scratch (backend/cpu/workspace.h), process-wide: what its
  // Workspaces hold now, and the most they held at once so far (both bounded by
  // the estimate's CPU scratch, estimate_device_memory).
  uint64_t scratch_bytes = 0;
  uint64_t scratch_peak_bytes = 0;
};

// Prompt / Prefix: PEFT's prompt tuning and prefix tuning (methods/prompt_learning_options.h).
enum class Method { Lora, Full, Frozen, Prompt, Prefix };

struct MemoryEstimateOptions {
  Method method = Method::Lora;
  int batch_size = 1;
  int seq_len = 256;
  struct Lora {
    int rank = 8;
    std::vector<std::string> targets;
    std::optional<std::vector<int>> layers;
    float dropout = 0.0f;  // > 0 needs two more scratch buffers
    bool dora = false;     // DoRA: the magnitudes, their norms and two [rows, out] buffers
  } lora;
  struct Prompt {
    int num_virtual_tokens = 0;  // rows run seq_len + num_virtual_tokens positions
  } prompt;
  struct Prefix {
    int num_virtual_tokens = 0;
    int encoder_hidden_size = 0;  // prefix_projection's MLP width; 0: no projection
  } prefix;
  bool gradient_checkpointing = false;
  OptimizerStep::Kind optimizer = OptimizerStep::Kind::AdamW;
  QuantizationOptions quantization;  // nf4: the block linears at their 4-bit size (method must not be Full)
  // The checkpoint's dtype. An F16/BF16 embedding and lm_head stay 16-bit (2
  // bytes a parameter, read by the 16-bit GEMMs as stored: nothing widened in
  // the arena), as transformers keeps them under load_in_4bit. Without
  // quantization an F16/BF16 model's frozen block linears stay 16-bit too
  // (LoRA, prompt, prefix tuning; model/weights.h keeps_16bit); full
  // fine-tuning makes every tensor fp32.
  DType weight_dtype = DType::F32;
  // The backend keeps activations in bf16 (Backend::bf16_activations: a CUDA
  // device in bf16 precision), which halves most of what a layer keeps
  // (activations.h Bf16Kept). "auto" precision is counted as fp32, the larger.
  bool bf16_activations = false;
  // The engine's CPU threads (EngineOptions::threads; 0: the hardware's): on
  // the CPU each keeps its own scratch (estimate_device_memory).
  int threads = 0;
};

// The one formula behind `inspect` and the engine's own buffers: the engine
// sizes its arena with it, so estimate and allocation agree to the byte.
struct MemoryEstimate {
  uint64_t weight_bytes = 0;      // all parameters (base + adapter): fp32, 16-bit / 4-bit ones at their size
  uint64_t quantized_bytes = 0;   // the 4-bit linears' part of weight_bytes (codes + scales)
  int64_t quantized_params = 0;   // parameters held in 4 bits
  uint64_t gradient_bytes = 0;    // one fp32 gradient per trainable parameter
  uint64_t optimizer_bytes = 0;   // AdamW m and v (SGD: 0)
  uint64_t activation_bytes = 0;  // the activation arena for batch_size x seq_len
  uint64_t total_bytes = 0;       // sum of the above
  int64_t trainable_params = 0;
  int64_t total_params = 0;       // base + adapter
};

MemoryEstimate estimate_memory(const ModelSpec& spec, const MemoryEstimateOptions& options);

// The base tensors a spec needs, in the engine's fixed order (HF names, shapes).
std::vector<ParameterInfo> expected_weights(const ModelSpec& spec);

class Backend;

class Engine {
 public:
  Engine(const ModelSpec& spec, const EngineOptions& options);
  // Runs on the given backend instead of the one options.device names (tests
  // drive the engine through a checking backend this way).
  Engine(const ModelSpec& spec, const EngineOptions& options, std::unique_ptr<Backend> backend);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelSpec& spec() const;  // with head_dim filled in
  std::string describe() const;   // backend, kernels, threads

  // Maps each file once and takes every tensor the spec needs: F32 in place
  // (read-only mapping, no copy) when 4-byte aligned, F16/BF16 converted to
  // fp32 (their pages handed back once converted) except the frozen block
  // linears, the embedding and the lm_head, used from the mapping as stored
  // (copied when misaligned; full fine-tuning widens them). Names the spec does not
  // use are ignored (lm_head.weight of a tied model too). Throws naming a
  // missing tensor, a bad shape or a short file.
  // With quantization an F16/BF16 embedding and lm_head are used from the
  // mapping as stored (2 bytes a parameter; see MemoryEstimateOptions::weight_dtype).
  // With quantization nf4 the block linears are quantized from their
  // F32/F16/BF16 bytes (the pages read are handed back to the OS, no fp32
  // copy stays), or taken as they are when bitsandbytes saved them quantized.
  void load_weights(const std::vector<WeightRef>& refs);
  // Places one base weight from memory (a copy), e.g. a random test model;
  // n must equal the tensor's element count. A 4-bit linear is quantized.
  void set_weight(const std::string& name, const float* data, size_t n);

  // Trainable tensors. Call once, after the weights are in place.
  void setup_lora(const LoraOptions& options);
  void setup_full();  // refused on a 4-bit base (its weights cannot be trained)
  // PEFT prompt tuning: trainable "prompt_embeddings" [nvt, hidden]. Batches
  // stay the real tokens (positions from 0): the engine prepends the virtual
  // tokens (positions 0..nvt-1, labels -100, the row's segment) and shifts the
  // real positions by nvt, so the last virtual token predicts labels[0]. A row
  // that packs several sequences is refused.
  void setup_prompt_tuning(const PromptTuningOptions& options);
  // PEFT prefix tuning: "prefix_embeddings" [nvt, L * 2 * kv_dim], or with
  // projection the "prefix_encoder.*" MLP tensors. Every layer's attention
  // gets nvt leading key/value positions (keys not rotated) that every real
  // token sees; real positions are shifted by nvt. Works with gradient
  // checkpointing and a 4-bit base. To use a saved adapter: set up without
  // projection, then set_tensor("prefix_embeddings", table).
  void setup_prefix_tuning(const PrefixTuningOptions& options);
  // The [nvt, L * 2 * kv_dim] table PEFT saves as prompt_embeddings
  // (projection applied, eval mode).
  std::vector<float> prefix_table() const;

  std::vector<ParameterInfo> parameters() const;
  // Base (a 4-bit linear: its dequantized values) or trainable.
  std::vector<float> get_tensor(const std::string& name) const;
  void set_tensor(const std::string& name, const float* data, size_t n);
  std::vector<float> get_gradient(const std::string& name) const;  // trainable only
  // Every tensor holding NaN or Inf values, in parameters() order: base
  // weights as stored (fp32, 16-bit by their bits, a 4-bit one dequantized,
  // so a NaN absmax shows) and the trainable / adapter tensors, each with its
  // counts. Reads every value: call it once something came out non-finite,
  // not on every load.
  std::vector<NonFiniteTensor> non_finite_tensors() const;
  void zero_gradients();

  // Allocates the activation arena for batches up to batch_size x seq_len now,
  // so an out-of-memory shows before training starts (steps grow it otherwise).
  void reserve_activations(int batch_size, int seq_len);
  // Accumulates the gradients of grad_scale * loss_sum into the trainable tensors.
  LossResult forward_backward(const Batch& batch, float grad_scale);
  // Forward only, dropout off (eval mode).
  LossResult evaluate(const Batch& batch);
  // One optimizer step on the accumulated gradients, then zeroes them. Returns
  // the global L2 norm of all gradients before clipping.
  double optimizer_step(const OptimizerStep& step);
  OptimizerState get_optimizer_state() const;
  void set_optimizer_state(const OptimizerState& state);

  // Dropout masks are keyed by (seed, counter, layer, module); the counter
  // advances once per forward_backward. Exposed for exact resumption and tests.
  uint64_t dropout_counter() const;
  void set_dropout_counter(uint64_t counter);

  // Generation (batch 1, eval mode, LoRA applied when set up).
  // A new sequence with room for max_tokens real positions. With prompt or
  // prefix tuning the cache starts with the nvt virtual positions (the soft
  // prompt run through the model, or the prefix table copied in), so the
  // first decoded token takes position nvt.
  void reset_cache(int max_tokens);
  // Appends tokens at the next positions; returns the logits [vocab] of the last one.
  std::vector<float> decode(const int32_t* tokens, size_t n);

  MemoryUsage memory() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Peak resident set size of this process (bytes), 0 where unknown.
uint64_t peak_rss_bytes();

}  // namespace ps
