#include "memory_estimate.h"

#include <algorithm>

#include "backend/column_dot_plan.h"
#include "backend/cuda/cublaslt/lt_gemm.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/lora_fused_plan.h"
#include "error.h"
#include "methods/lora.h"
#include "methods/prefix_tuning.h"
#include "model/batch_inputs.h"
#include "model/tensor_names.h"
#include "model/weights.h"
#include "threadpool.h"

namespace ps {

namespace {
// Whether the store keeps this frozen tensor 16-bit (WeightStore, keeps_16bit):
// a 16-bit checkpoint, not full fine-tuning (which trains fp32 master copies).
bool holds_16bit(const MemoryEstimateOptions& o, const std::string& name) {
  const bool sixteen = (o.weight_dtype == DType::F16 || o.weight_dtype == DType::BF16) && o.method != Method::Full;
  return sixteen && keeps_16bit(name, o.quantization.enabled());
}
}  // namespace

PlanConfig make_plan_config(const ModelDims& d, Method method, bool train, int rows, bool checkpoint,
                            const int lora_ranks[kNumModules], bool lora_dropout,
                            const PrefixPlan& prefix) {
  PlanConfig c;
  c.dims = d;
  c.rows = rows;
  c.train = train && method != Method::Frozen;
  c.checkpoint = c.train && checkpoint;
  if (method == Method::Lora) {
    for (int m = 0; m < kNumModules; ++m) c.lora_rank[m] = lora_ranks[m];
    c.lora_dropout = lora_dropout && c.train;
  }
  if (method == Method::Prefix) {
    c.prefix_tokens = prefix.tokens;
    c.batch = prefix.batch;
    c.prefix_hidden = prefix.hidden;
  }
  return c;
}

MemoryEstimate estimate_memory(const ModelSpec& raw, const MemoryEstimateOptions& o) {
  const ModelSpec spec = resolve_spec(raw);
  const ModelDims d(spec);
  if (o.batch_size < 1 || o.seq_len < 1)
    throw Error("memory estimate: batch size and sequence length must be at least 1");
  const QuantizationOptions& q = o.quantization;
  if (q.enabled()) {
    nf4_check_blocksize(q.blocksize);
    if (o.method == Method::Full)
      throw Error("memory estimate: full fine-tuning cannot train a 4-bit base; use LoRA (QLoRA) or no quantization");
  }
  // A 16-bit checkpoint's frozen tensors stay 16-bit (WeightStore, keeps_16bit): under
  // quantization the embedding / lm_head, else also the block linears. The
  // 16-bit GEMMs read them as stored, so the arena holds nothing widened.
  // Full fine-tuning trains fp32 master copies of everything.
  const std::vector<ParameterInfo> weights = expected_weights(spec);
  auto held_16bit = [&](const std::string& name) { return holds_16bit(o, name); };
  int64_t base = 0, quantized = 0;
  uint64_t base_bytes = 0, quantized_bytes = 0;
  for (const auto& w : weights) {
    int64_t n = 1;
    for (int64_t s : w.shape) n *= s;
    base += n;
    if (q.enabled() && is_quantized_linear(w.name)) {
      // The same per-tensor formula the store's 4-bit weights have (partial blocks included).
      const uint64_t b = nf4_resident_bytes(n, q.blocksize, q.double_quant);
      quantized += n;
      quantized_bytes += b;
      base_bytes += b;
    } else if (held_16bit(w.name)) {
      base_bytes += static_cast<uint64_t>(n) * sizeof(uint16_t);
    } else {
      base_bytes += static_cast<uint64_t>(n) * sizeof(float);
    }
  }
  int64_t adapter = 0, trainable = 0;
  uint64_t dora_aux = 0;  // DoRA's norms and refresh scratch, held with the adapter
  int ranks[kNumModules] = {};
  if (o.method == Method::Lora) {
    if (o.lora.rank < 1) throw Error("memory estimate: LoRA rank must be at least 1");
    const LoraSelection sel(d, o.lora.targets, o.lora.layers);
    adapter = sel.params(d, o.lora.rank) + (o.lora.dora ? sel.dora_params(d) : 0);
    trainable = adapter;
    if (o.lora.dora) dora_aux = static_cast<uint64_t>(sel.dora_aux_floats(d, o.lora.rank)) * sizeof(float);
    bool any_layer = false;
    for (int l = 0; l < d.L; ++l) any_layer = any_layer || sel.layer[l];
    for (int m = 0; m < kNumModules; ++m) ranks[m] = sel.module[m] && any_layer ? o.lora.rank : 0;
  } else if (o.method == Method::Full) {
    trainable = base;
  }
  // Prompt tuning runs nvt more positions per row; prefix tuning adds its
  // prefix to every row's keys/values (and with projection the MLP's table).
  int virtual_rows = 0;
  PrefixPlan prefix;
  if (o.method == Method::Prompt) {
    const int nvt = o.prompt.num_virtual_tokens;
    if (nvt < 1) throw Error("memory estimate: prompt.numVirtualTokens must be at least 1");
    adapter = trainable = static_cast<int64_t>(nvt) * d.D;
    virtual_rows = nvt;
  } else if (o.method == Method::Prefix) {
    const int nvt = o.prefix.num_virtual_tokens, enc = o.prefix.encoder_hidden_size;
    if (nvt < 1) throw Error("memory estimate: prefix.numVirtualTokens must be at least 1");
    if (enc < 0) throw Error("memory estimate: prefix.encoderHiddenSize must be at least 1 (or null: no projection)");
    adapter = trainable = prefix_tuning_params(d, nvt, enc);
    prefix = {nvt, o.batch_size, enc};
  }
  // Checked before the product is taken as an int (a batch of 1e9 from a form
  // would otherwise wrap into a nonsense estimate).
  const int64_t tokens = static_cast<int64_t>(o.batch_size) * (static_cast<int64_t>(o.seq_len) + virtual_rows);
  if (tokens > kMaxTokensPerStep)
    throw Error("memory estimate: batch size " + std::to_string(o.batch_size) + " x sequence length " +
                std::to_string(o.seq_len) +
                (virtual_rows ? " (+ " + std::to_string(virtual_rows) + " virtual tokens)" : std::string()) + " = " +
                std::to_string(tokens) + " tokens per step, more than one step can hold (" +
                std::to_string(kMaxTokensPerStep) + "): lower the batch size or the sequence length");
  const int rows = static_cast<int>(tokens);
  PlanConfig config = make_plan_config(d, o.method, true, rows, o.gradient_checkpointing, ranks,
                                       o.lora.dropout > 0, prefix);
  config.share_attention = q.enabled();
  config.bf16_activations = o.bf16_activations;
  config.dora = o.method == Method::Lora && o.lora.dora;
  const ActivationPlan plan(config);
  MemoryEstimate e;
  e.total_params = base + adapter;
  e.trainable_params = trainable;
  e.weight_bytes = base_bytes + static_cast<uint64_t>(adapter) * sizeof(float) + dora_aux;
  e.quantized_bytes = quantized_bytes;
  e.quantized_params = quantized;
  e.gradient_bytes = static_cast<uint64_t>(trainable) * sizeof(float);
  e.optimizer_bytes = o.method != Method::Frozen && o.optimizer == OptimizerStep::Kind::AdamW
                          ? 2 * e.gradient_bytes
                          : 0;
  e.activation_bytes = plan.bytes();
  e.total_bytes = e.weight_bytes + e.gradient_bytes + e.optimizer_bytes + e.activation_bytes;
  return e;
}

namespace {

// The CPU scratch's view of a run (backend/cpu/scratch_bounds.h).
CpuScratchPlan cpu_scratch_plan(const MemoryEstimateOptions& o, const ModelSpec& spec, const ModelDims& d) {
  CpuScratchPlan p;
  p.threads = o.threads > 0 ? o.threads : hardware_threads();
  p.batch = o.batch_size;
  p.positions = o.seq_len + (o.method == Method::Prompt ? o.prompt.num_virtual_tokens : 0);
  if (o.method == Method::Prefix) {
    p.prefix = o.prefix.num_virtual_tokens;
    p.prefix_hidden = o.prefix.encoder_hidden_size;
  }
  if (o.method == Method::Lora) {
    p.lora_rank = o.lora.rank;
    p.dora = o.lora.dora;
  }
  p.full = o.method == Method::Full;
  // What the weight GEMMs read as stored: 4-bit block linears, or 16-bit ones
  // and a 16-bit head (the embedding table when tied) the store keeps so.
  for (const auto& w : expected_weights(spec)) {
    if (is_quantized_linear(w.name))
      p.stored_linears = p.stored_linears || o.quantization.enabled() || holds_16bit(o, w.name);
    else if (w.name == "lm_head.weight" || (d.tied && w.name == "model.embed_tokens.weight"))
      p.stored_head = p.stored_head || holds_16bit(o, w.name);
  }
  return p;
}

bool is_cuda_device(const std::string& device) {
  if (device.empty() || device == "cpu") return false;
  if (device == "cuda") return true;
  if (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
      std::all_of(device.begin() + 5, device.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return true;
  throw Error("memory estimate: unknown device \"" + device + "\": use \"cpu\", \"cuda\" or \"cuda:N\"");
}

// Rows of the widened chunk weight_gemm.cu makes of a [rows, cols] weight
// (CudaBackend::weight_chunk_rows with the default bound, kWeightChunkValues).
int64_t weight_chunk_rows(int64_t rows, int64_t cols) {
  int64_t per_chunk = cols > 0 ? static_cast<int64_t>(CudaBackend::kWeightChunkValues) / cols : rows;
  if (per_chunk < 1) return 1;
  if (per_chunk >= 64) per_chunk -= per_chunk % 64;
  return per_chunk < rows ? per_chunk : (rows > 0 ? rows : 1);
}

// Values of gemm_precision.cu's bf16 copy of a stored [rows, cols] operand (rows padded to 8 values).
uint64_t padded_values(int64_t rows, int64_t cols) {
  return static_cast<uint64_t>(rows) * static_cast<uint64_t>((cols + 7) / 8 * 8);
}

}  // namespace

DeviceMemoryEstimate estimate_device_memory(const ModelSpec& raw, const MemoryEstimateOptions& o,
                                            const std::string& device, const std::string& precision) {
  if (precision != "fp32" && precision != "bf16" && precision != "auto")
    throw Error("memory estimate: unknown precision \"" + precision + "\": use fp32, bf16 or auto");
  const bool cuda = is_cuda_device(device);
  estimate_memory(raw, o);  // the same checks of the options (throws as it does)
  DeviceMemoryEstimate e;
  const ModelSpec spec = resolve_spec(raw);
  const ModelDims d(spec);
  if (!cuda) {
    e.cpu = estimate_cpu_scratch(d, cpu_scratch_plan(o, spec, d));
    return e;
  }
  // The CUDA context: PyTorch measured its own context at 287,047,680 bytes
  // (274 MiB) with lazy module loading and 666,632,192 eagerly
  // (github.com/pytorch/pytorch/pull/86509, CUDA_MODULE_LOADING=LAZY);
  // lazy loading is the default on Linux since CUDA 12.2 (CUDA C++
  // Programming Guide, "Lazy Loading"), and our static cudart is newer. Our
  // module code is far smaller than torch's, cuBLASLt's kernels load lazily
  // too: 512 MiB stays above the lazy figure with the local-memory
  // reservation of a large GPU to spare. tests/cuda/test_cuda_context_memory.cpp
  // measures it on the GPU machine (scripts/gpu-check.sh).
  e.context_bytes = kCudaContextBytes;
  e.workspace_bytes = cublaslt::Gemm::kWorkspaceBytes;
  const QuantizationOptions& q = o.quantization;
  uint64_t largest_weight = 0;  // values of the largest stored [rows, cols] a product reads, padded
  // The load's host buffers (host_load_bytes): the largest weight it quantizes,
  // and the largest 16-bit one it widens to fp32 through the stage (one not
  // kept 16-bit: a norm, a bias; kept ones are uploaded as stored).
  const bool file_16bit = o.weight_dtype == DType::F16 || o.weight_dtype == DType::BF16;
  uint64_t largest_widened = 0, largest_quantized = 0;  // values
  for (const auto& w : expected_weights(spec)) {
    uint64_t values = 1;
    for (int64_t s : w.shape) values *= static_cast<uint64_t>(s);
    const bool quantized = q.enabled() && is_quantized_linear(w.name);
    if (quantized) largest_quantized = std::max(largest_quantized, values);
    else if (file_16bit && !keeps_16bit(w.name, q.enabled())) largest_widened = std::max(largest_widened, values);
    if (w.shape.size() != 2) continue;
    const int64_t rows = w.shape[0], cols = w.shape[1];
    if ((q.enabled() && is_quantized_linear(w.name)) || holds_16bit(o, w.name)) {
      // A 4-bit or 16-bit weight reaches the GEMM as its widened chunk.
      const int64_t chunk = weight_chunk_rows(rows, cols);
      e.weight_chunk_bytes = std::max(e.weight_chunk_bytes, static_cast<uint64_t>(chunk * cols) * sizeof(float));
      largest_weight = std::max(largest_weight, padded_values(chunk, cols));
    } else {
      largest_weight = std::max(largest_weight, padded_values(rows, cols));
    }
  }
  if (largest_quantized > 0) {
    // its fp32 values, its codes and scales, and under double quantization the
    // fp32 absmax nf4_quantize holds while it quantizes them
    const int64_t n = static_cast<int64_t>(largest_quantized);
    e.host_load_bytes += largest_quantized * sizeof(float) + nf4_resident_bytes(n, q.blocksize, q.double_quant) +
                         (q.double_quant ? static_cast<uint64_t>((n + q.blocksize - 1) / q.blocksize) * sizeof(float) : 0);
  }
  e.host_load_bytes += std::min<uint64_t>(largest_widened, kWeightStageValues) * sizeof(float);
  if (o.method == Method::Lora) {
    // The fused LoRA kernels' partial sums (lora_fused_plan.h) borrow the
    // backend's reduction slot, which grows to the largest need: every
    // targeted linear at the step's rows, backward with all three gradients
    // wanted (the most scratch) or forward.
    const LoraSelection sel(d, o.lora.targets, o.lora.layers);
    const int64_t rows = static_cast<int64_t>(o.batch_size) * o.seq_len;
    uint64_t floats = 0;
    for (int m = 0; m < kNumModules; ++m) {
      if (!sel.module[m]) continue;
      const int N = module_out_features(d, m), K = module_in_features(d, m), r = o.lora.rank;
      const int M = static_cast<int>(rows);
      floats = std::max<uint64_t>(floats, cuda::lora_fused_forward_scratch_floats(M, N, K, r));
      floats = std::max<uint64_t>(floats, cuda::lora_fused_backward_scratch_floats(M, N, K, r, true, true, true));
    }
    e.lora_partials_bytes = floats * sizeof(float);
    // DoRA's magnitude gradient takes its chunk sums from the same slot.
    if (o.lora.dora)
      for (int m = 0; m < kNumModules; ++m)
        if (sel.module[m])
          e.lora_partials_bytes = std::max<uint64_t>(
              e.lora_partials_bytes, column_dot_scratch_bytes(static_cast<int>(rows), module_out_features(d, m)));
  }
  if (precision != "fp32") {
    // Activations and gradients are [rows, width] for every width a product has.
    const int nvt = o.method == Method::Prompt ? o.prompt.num_virtual_tokens : 0;
    const int64_t rows = static_cast<int64_t>(o.batch_size) * (o.seq_len + nvt);
    const int64_t width = std::max({d.D, d.F, d.Dq, d.Dkv, d.V});
    uint64_t largest = std::max(largest_weight, padded_values(rows, width));
    if (o.method == Method::Prefix && o.prefix.encoder_hidden_size > 0) {
      // The projection MLP: [nvt, Dkv] -> [nvt, enc] -> [nvt, 2 L Dkv], weights [enc, Dkv] and [2 L Dkv, enc].
      const int64_t nvt_p = o.prefix.num_virtual_tokens, enc = o.prefix.encoder_hidden_size;
      const int64_t table = 2 * static_cast<int64_t>(d.L) * d.Dkv;
      largest = std::max({largest, padded_values(nvt_p, table), padded_values(nvt_p, enc), padded_values(table, enc),
                          padded_values(enc, d.Dkv)});
    }
    e.bf16_copy_bytes = 2 * std::min(largest, kBf16CopyValuesBound) * sizeof(uint16_t);
  }
  return e;
}

}  // namespace ps
