// The Engine: one model, one method, its optimizer, the activation arena and
// the generation cache, glued together behind the binding's contract (engine.h).
#include "engine.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/workspace.h"
#include "backend_factory.h"
#include "error.h"
#include "memory_estimate.h"
#include "methods/full.h"
#include "methods/lora.h"
#include "methods/neftune.h"
#include "methods/prefix_tuning.h"
#include "methods/prompt_tuning.h"
#include "model/batch_inputs.h"
#include "model/llama.h"
#include "model/non_finite_scan.h"
#include "model/tensor_names.h"
#include "model/weights.h"
#include "optimizer.h"
#include "rng.h"

namespace ps {

namespace {

// One backend allocation holding a plan's buffers.
struct Arena {
  Backend* be = nullptr;
  std::unique_ptr<ActivationPlan> plan;
  void* base = nullptr;
  Activations acts;

  void reset(Backend& backend, const PlanConfig& config) {
    release();
    be = &backend;
    auto p = std::make_unique<ActivationPlan>(config);
    try {
      base = be->alloc(p->bytes());
    } catch (const OutOfMemory&) {
      throw OutOfMemory("activations of " + std::to_string(config.rows) +
                            " tokens per step (lower the batch size or sequence length, or enable "
                            "gradient checkpointing)",
                        p->bytes());
    }
    acts = p->bind(base);
    plan = std::move(p);
  }
  void release() {
    if (base) be->release(base);
    base = nullptr;
    plan.reset();
    acts = Activations();
  }
  size_t bytes() const { return plan ? plan->bytes() : 0; }
  ~Arena() { release(); }
};

}  // namespace

struct Engine::Impl {
  ModelSpec spec;
  ModelDims d;
  EngineOptions options;
  std::unique_ptr<Backend> be;
  // Host-side threads for converting and quantizing weights: the CPU
  // backend's own pool, or (device backends) one of the engine's.
  std::unique_ptr<ThreadPool> host_pool;
  std::unique_ptr<WeightStore> weights;
  std::unique_ptr<LlamaModel> model;

  Method method = Method::Frozen;
  std::unique_ptr<LoraAdapters> lora;
  std::unique_ptr<FullFineTune> full;
  std::unique_ptr<PromptTuning> prompt;
  std::unique_ptr<PrefixTuning> prefix;
  std::vector<TrainableTensor> trainables;
  std::map<std::string, size_t> trainable_index;
  std::unique_ptr<Optimizer> optimizer;
  uint64_t dropout_counter = 0;

  Arena arena;         // training / evaluation
  Arena decode_arena;  // generation
  KvCache cache;
  float* kv_block = nullptr;
  size_t kv_block_bytes = 0;

  ModelParams params;
  uint64_t bound_generation = 0;
  bool params_stale = true;

  Impl(const ModelSpec& s, const EngineOptions& o, std::unique_ptr<Backend> backend)
      : spec(resolve_spec(s)), d(spec), options(o) {
    neftune_check_alpha(o.neftune_alpha);
    be = backend ? std::move(backend) : make_backend(o.device, o.threads, o.precision);
    ThreadPool* pool = nullptr;
    if (auto* cpu = dynamic_cast<CpuBackend*>(be.get())) {
      pool = &cpu->pool();
    } else {
      host_pool = std::make_unique<ThreadPool>(o.threads);
      pool = host_pool.get();
    }
    weights = std::make_unique<WeightStore>(*be, pool, expected_weights(spec), o.quantization);
    model = std::make_unique<LlamaModel>(*be, spec);
    optimizer = std::make_unique<Optimizer>(*be);
  }
  ~Impl() {
    if (kv_block) be->release(kv_block);
  }

  void lora_ranks(int out[kNumModules]) const {
    for (int m = 0; m < kNumModules; ++m) out[m] = lora ? lora->module_rank(m) : 0;
  }

  // The bound parameters, DoRA's norms made from the current adapters.
  const ModelParams& bound() {
    bind();
    if (lora && lora->dora()) lora->prepare_dora(linear_of(), bound_generation);
    return params;
  }

  void bind() {
    if (params_stale || bound_generation != weights->generation()) {
      weights->require_complete();
      params = bind_params(d, *weights, lora.get(), [this](const std::string& name) -> float* {
        return full ? full->grad(name) : nullptr;
      });
      params.prompt = prompt.get();
      params.prefix = prefix.get();
      bound_generation = weights->generation();
      params_stale = false;
    }
  }

  // The bound linear of (layer, module), for DoRA's norms.
  LoraAdapters::LinearOf linear_of() {
    return [this](int l, int module) -> const Linear& { return params.layers[l].lin[module]; };
  }

  // One arena serves every pass. Evaluation runs in any arena with room; an
  // evaluation-only session gets the small evaluation plan; once training
  // starts the arena is a training plan, grown to the largest batch seen.
  // batch: the batch rows of the step (prefix tuning sizes its key buffers by it).
  void ensure_arena(int rows, bool train, int batch) {
    const PlanConfig* have = arena.plan ? &arena.plan->config() : nullptr;
    const bool have_train = have && have->train;
    // A plan for the other activation precision (the backend's precision was
    // changed after the arena was made) would restore stale 16-bit copies.
    const bool room = have && have->rows >= rows && (!prefix || have->batch >= batch) &&
                      have->bf16_activations == be->bf16_activations();
    if (room && (!train || have_train || method == Method::Frozen)) return;
    const bool plan_train = (train || have_train) && method != Method::Frozen;
    const bool grow = have && have_train == plan_train;
    const int capacity = grow ? std::max(rows, have->rows) : rows;
    int ranks[kNumModules];
    lora_ranks(ranks);
    PrefixPlan pp;
    if (prefix) pp = {prefix->tokens(), grow ? std::max(batch, have->batch) : batch, prefix->encoder_hidden()};
    PlanConfig config = make_plan_config(d, method, plan_train, capacity, options.gradient_checkpointing, ranks,
                                         lora && lora->dropout(), pp);
    config.share_attention = options.quantization.enabled();  // QLoRA: memory first
    config.bf16_activations = be->bf16_activations();
    config.dora = lora && lora->dora();
    arena.reset(*be, config);
  }

  void set_trainables(const std::vector<TrainableTensor>& list) {
    trainables = list;
    trainable_index.clear();
    for (size_t i = 0; i < trainables.size(); ++i) trainable_index[trainables[i].name] = i;
    params_stale = true;
    arena.release();  // the plan depends on the method
    release_cache();
  }

  void release_cache() {
    decode_arena.release();
    if (kv_block) be->release(kv_block);
    kv_block = nullptr;
    kv_block_bytes = 0;
    cache = KvCache();
  }

  const TrainableTensor* trainable(const std::string& name) const {
    auto it = trainable_index.find(name);
    return it == trainable_index.end() ? nullptr : &trainables[it->second];
  }

  void require_untrained(const char* what) const {
    static const char* const names[] = {"LoRA", "full fine-tuning", "none", "prompt tuning", "prefix tuning"};
    if (method != Method::Frozen)
      throw Error(std::string(what) + ": the engine already has a training method (" +
                  names[static_cast<int>(method)] + "); create a new engine");
  }

  // Leading positions a prompt / prefix adapter adds to every sequence.
  int virtual_tokens() const { return prompt ? prompt->tokens() : prefix ? prefix->tokens() : 0; }

  // The batch the model runs: checked as given (so errors name the caller's
  // indices), then with prompt tuning's virtual tokens prepended, or with
  // prefix tuning's positions shifted past the prefix.
  const Batch& model_batch(const Batch& batch, Batch& storage) const {
    if (!prompt && !prefix) return batch;
    prepare_batch(batch, d);
    if (prompt) {
      storage = prepend_virtual_tokens(batch, prompt->tokens());
    } else {
      storage = batch;
      for (auto& p : storage.positions) p += prefix->tokens();
    }
    return storage;
  }
};

Engine::Engine(const ModelSpec& spec, const EngineOptions& options)
    : impl_(std::make_unique<Impl>(spec, options, nullptr)) {}

Engine::Engine(const ModelSpec& spec, const EngineOptions& options, std::unique_ptr<Backend> backend)
    : impl_(std::make_unique<Impl>(spec, options, std::move(backend))) {
  if (!impl_->be) throw Error("Engine: no backend given");
}

Engine::~Engine() = default;

const ModelSpec& Engine::spec() const { return impl_->spec; }

std::string Engine::describe() const {
  const QuantizationOptions& q = impl_->options.quantization;
  if (!q.enabled()) return impl_->be->describe();
  return impl_->be->describe() + "; base linears in NF4 (blocksize " + std::to_string(q.blocksize) +
         (q.double_quant ? ", double quantization)" : ")");
}

void Engine::load_weights(const std::vector<WeightRef>& refs) {
  if (impl_->method == Method::Full)
    throw Error("loadWeights: full fine-tuning already owns copies of the weights; load them before setupFull");
  impl_->weights->load(refs);
  impl_->params_stale = true;
}

void Engine::set_weight(const std::string& name, const float* data, size_t n) {
  impl_->weights->set(name, data, n);
  impl_->params_stale = true;
  // The store may write in place (its generation unchanged): DoRA's ||W||^2 is redone.
  if (impl_->lora) impl_->lora->weights_changed();
}

void Engine::setup_lora(const LoraOptions& options) {
  Impl& m = *impl_;
  m.require_untrained("setupLora");
  if (options.dora) {
    // The magnitudes start at the base's row norms: the weights must be in place.
    try {
      m.weights->require_complete();
    } catch (const Error& e) {
      throw Error(std::string("setupLora with DoRA: ") + e.what());
    }
  }
  auto lora = std::make_unique<LoraAdapters>(*m.be, m.d, options);
  m.lora = std::move(lora);
  m.method = Method::Lora;
  m.set_trainables(m.lora->trainables());
  if (options.dora) {
    m.bind();  // the adapters' linears (set_trainables marked the binding stale)
    m.lora->init_magnitudes(m.linear_of(), m.bound_generation);
  }
}

void Engine::setup_full() {
  Impl& m = *impl_;
  m.require_untrained("setupFull");
  if (m.weights->quantized())
    throw Error("setupFull: the model's linear layers are held in 4 bits (NF4), which cannot be trained; "
                "use LoRA on the 4-bit base (QLoRA), or load the model without quantization for full fine-tuning");
  m.full = std::make_unique<FullFineTune>(*m.be, *m.weights);
  m.method = Method::Full;
  m.set_trainables(m.full->trainables());
}

void Engine::setup_prompt_tuning(const PromptTuningOptions& options) {
  Impl& m = *impl_;
  m.require_untrained("setupPromptTuning");
  m.prompt = std::make_unique<PromptTuning>(*m.be, m.d, options);
  m.method = Method::Prompt;
  m.set_trainables(m.prompt->trainables());
}

void Engine::setup_prefix_tuning(const PrefixTuningOptions& options) {
  Impl& m = *impl_;
  m.require_untrained("setupPrefixTuning");
  m.prefix = std::make_unique<PrefixTuning>(*m.be, m.d, options);
  m.method = Method::Prefix;
  m.set_trainables(m.prefix->trainables());
}

std::vector<float> Engine::prefix_table() const {
  if (!impl_->prefix) throw Error("prefixTable: the engine has no prefix tuning; call setupPrefixTuning first");
  return impl_->prefix->host_table();
}

std::vector<ParameterInfo> Engine::parameters() const {
  const Impl& m = *impl_;
  std::vector<ParameterInfo> out;
  for (const auto& t : m.weights->tensors()) out.push_back({t.name, t.shape, m.method == Method::Full});
  if (m.method != Method::Full)  // adapter tensors (full fine-tuning's are the base weights above)
    for (const auto& t : m.trainables) out.push_back({t.name, t.shape, true});
  return out;
}

std::vector<NonFiniteTensor> Engine::non_finite_tensors() const {
  const Impl& m = *impl_;
  std::vector<NonFiniteTensor> out;
  // Host fp32 / 16-bit tensors are counted in place; 4-bit ones and device
  // memory through one bounded scratch buffer (model/non_finite_scan.h), so
  // the scan needs at most 16 MiB more whatever the model's size.
  NonFiniteScan scan(*m.be);
  const bool full = m.method == Method::Full;  // its trainables are the base weights
  for (const WeightTensor& w : m.weights->tensors()) {
    if (!w.loaded()) continue;
    const NonFiniteCount c = scan.weight(*m.weights, w);
    if (c.any()) out.push_back({w.name, full, c.nan, c.inf});
  }
  if (!full)
    for (const TrainableTensor& t : m.trainables) {
      const NonFiniteCount c = scan.backend_floats(t.value, t.numel);
      if (c.any()) out.push_back({t.name, true, c.nan, c.inf});
    }
  return out;
}

std::vector<float> Engine::get_tensor(const std::string& name) const {
  const Impl& m = *impl_;
  if (const TrainableTensor* t = m.trainable(name)) {
    std::vector<float> out(t->numel);
    m.be->download(out.data(), t->value, t->numel * sizeof(float));
    return out;
  }
  if (!m.weights->has(name)) throw Error("getTensor: no tensor named \"" + name + "\"");
  const WeightTensor& w = m.weights->get(name);
  if (!w.loaded()) throw Error("getTensor: \"" + name + "\" is not loaded yet");
  std::vector<float> out(w.numel);
  m.weights->read(name, out.data());
  return out;
}

void Engine::set_tensor(const std::string& name, const float* data, size_t n) {
  Impl& m = *impl_;
  if (const TrainableTensor* t = m.trainable(name)) {
    if (n != t->numel) {
      std::string shape;
      for (int64_t x : t->shape) shape += (shape.empty() ? "" : ", ") + std::to_string(x);
      throw Error("setTensor: \"" + name + "\" is [" + shape + "] = " + std::to_string(t->numel) +
                  " values, got " + std::to_string(n) +
                  " (was the adapter saved for this model and this number of virtual tokens / rank?)");
    }
    m.be->upload(t->value, data, n * sizeof(float));
    if (m.lora) m.lora->changed();
    return;
  }
  if (!m.weights->has(name)) throw Error("setTensor: no tensor named \"" + name + "\"");
  m.weights->set(name, data, n);
  m.params_stale = true;
  if (m.lora) m.lora->weights_changed();
}

std::vector<float> Engine::get_gradient(const std::string& name) const {
  const Impl& m = *impl_;
  const TrainableTensor* t = m.trainable(name);
  if (!t) throw Error("getGradient: \"" + name + "\" is not a trainable tensor");
  std::vector<float> out(t->numel);
  m.be->download(out.data(), t->grad, t->numel * sizeof(float));
  return out;
}

void Engine::zero_gradients() {
  for (const auto& t : impl_->trainables) impl_->be->fill(t.grad, 0.0f, t.numel);
}

void Engine::reserve_activations(int batch_size, int seq_len) {
  if (batch_size < 1 || seq_len < 1 || static_cast<int64_t>(batch_size) * seq_len > (int64_t(1) << 24))
    throw Error("reserveActivations: batch size and sequence length must be >= 1 and their product <= 2^24");
  // Prompt tuning's virtual tokens are rows of the batch; prefix tuning's are not.
  const int lead = impl_->prompt ? impl_->prompt->tokens() : 0;
  impl_->ensure_arena(batch_size * (seq_len + lead), true, batch_size);
}

LossResult Engine::forward_backward(const Batch& batch, float grad_scale) {
  Impl& m = *impl_;
  if (m.trainables.empty())
    throw Error("forwardBackward: nothing is trainable; call setupLora, setupFull, setupPromptTuning or "
                "setupPrefixTuning first");
  if (!std::isfinite(grad_scale)) throw Error("forwardBackward: gradScale must be a finite number");
  Batch storage;
  const Batch& run = m.model_batch(batch, storage);
  const PreparedBatch pb = prepare_batch(run, m.d);
  const ModelParams& p = m.bound();
  m.ensure_arena(pb.rows, true, pb.B);
  LlamaModel::TrainPass pass;
  pass.grad_scale = grad_scale;
  pass.checkpoint = m.options.gradient_checkpointing;
  pass.dropout = m.lora && m.lora->dropout();
  pass.step_key = mix_key({m.options.seed, m.dropout_counter});
  // L: the caller's rows (a soft prompt's virtual tokens are not embeddings of the batch's tokens).
  pass.neftune_magnitude = neftune_magnitude(m.options.neftune_alpha, batch.seq_len, m.d.D);
  ++m.dropout_counter;
  return m.model->forward_backward(p, m.arena.acts, run, pb, pass);
}

LossResult Engine::evaluate(const Batch& batch) {
  Impl& m = *impl_;
  Batch storage;
  const Batch& run = m.model_batch(batch, storage);
  const PreparedBatch pb = prepare_batch(run, m.d);
  const ModelParams& p = m.bound();
  m.ensure_arena(pb.rows, false, pb.B);
  return m.model->evaluate(p, m.arena.acts, run, pb);
}

double Engine::optimizer_step(const OptimizerStep& step) {
  const double norm = impl_->optimizer->step(impl_->trainables, step);
  if (impl_->lora) impl_->lora->changed();  // DoRA's norms follow the new A, B, m
  return norm;
}

OptimizerState Engine::get_optimizer_state() const { return impl_->optimizer->state(impl_->trainables); }

void Engine::set_optimizer_state(const OptimizerState& state) {
  impl_->optimizer->set_state(impl_->trainables, state);
}

uint64_t Engine::dropout_counter() const { return impl_->dropout_counter; }
void Engine::set_dropout_counter(uint64_t counter) { impl_->dropout_counter = counter; }

// Prefill runs in chunks of this many tokens, bounding the decode arena.
static constexpr int kDecodeChunk = 256;

void Engine::reset_cache(int max_tokens) {
  Impl& m = *impl_;
  if (max_tokens < 1 || max_tokens > kMaxPosition)
    throw Error("resetCache: maxTokens must be in [1, " + std::to_string(kMaxPosition) + "], got " +
                std::to_string(max_tokens));
  const int nv = m.virtual_tokens();
  if (max_tokens > kMaxPosition - nv)
    throw Error("resetCache: maxTokens + the adapter's " + std::to_string(nv) + " virtual tokens must be at most " +
                std::to_string(kMaxPosition));
  const int capacity = max_tokens + nv;  // the virtual positions come first
  const size_t kv_bytes = static_cast<size_t>(2) * m.d.L * capacity * m.d.Dkv * sizeof(float);
  PlanConfig config;
  config.dims = m.d;
  config.rows = std::min(capacity, kDecodeChunk);
  config.train = false;
  m.lora_ranks(config.lora_rank);
  config.dora = m.lora && m.lora->dora();
  m.release_cache();
  m.decode_arena.reset(*m.be, config);
  try {
    m.kv_block = static_cast<float*>(m.be->alloc(kv_bytes));
  } catch (const OutOfMemory&) {
    throw OutOfMemory("the KV cache of " + std::to_string(max_tokens) + " tokens (lower maxTokens)", kv_bytes);
  }
  m.kv_block_bytes = kv_bytes;
  m.cache.capacity = capacity;
  m.cache.length = 0;
  const size_t per = static_cast<size_t>(capacity) * m.d.Dkv;
  for (int l = 0; l < m.d.L; ++l) {
    m.cache.k.push_back(m.kv_block + (2 * static_cast<size_t>(l)) * per);
    m.cache.v.push_back(m.kv_block + (2 * static_cast<size_t>(l) + 1) * per);
  }
  if (m.prompt) {
    // The soft prompt runs through the model at positions 0..nvt-1, as in training.
    m.model->decode_embeddings(m.bound(), m.decode_arena.acts, m.cache, m.prompt->embeddings(), nv);
  } else if (m.prefix) {
    // The prefix IS a cache of nvt positions: layer l's keys/values copied in as stored.
    const std::vector<float> table = m.prefix->host_table();
    const size_t width = static_cast<size_t>(m.prefix->width()), Dkv = static_cast<size_t>(m.d.Dkv);
    for (int l = 0; l < m.d.L; ++l)
      for (int i = 0; i < nv; ++i) {
        const float* row = table.data() + i * width + 2 * static_cast<size_t>(l) * Dkv;
        m.be->upload(m.cache.k[l] + i * Dkv, row, Dkv * sizeof(float));
        m.be->upload(m.cache.v[l] + i * Dkv, row + Dkv, Dkv * sizeof(float));
      }
    m.cache.length = nv;
  }
  m.cache.virtual_tokens = nv;
}

std::vector<float> Engine::decode(const int32_t* tokens, size_t n) {
  Impl& m = *impl_;
  if (!m.decode_arena.plan) throw Error("decode: call resetCache(maxTokens) before decoding");
  const ModelParams& p = m.bound();
  const float* logits = m.model->decode(p, m.decode_arena.acts, m.cache, tokens, n);
  std::vector<float> out(m.d.V);
  m.be->download(out.data(), logits, out.size() * sizeof(float));
  return out;
}

MemoryUsage Engine::memory() const {
  const Impl& m = *impl_;
  MemoryUsage u;
  const int64_t adapter = m.lora     ? m.lora->params()
                         : m.prompt ? m.prompt->params()
                         : m.prefix ? m.prefix->params()
                                    : 0;
  u.weight_bytes = m.weights->bytes() + static_cast<uint64_t>(adapter) * sizeof(float) +
                   (m.lora ? m.lora->aux_bytes() : 0);
  u.quantized_bytes = m.weights->quantized_bytes();
  u.quantized_params = m.weights->quantized_params();
  uint64_t grads = 0;
  for (const auto& t : m.trainables) grads += t.numel * sizeof(float);
  u.trainable_bytes = grads + m.optimizer->bytes();
  u.activation_bytes = m.arena.bytes();
  u.kv_cache_bytes = m.decode_arena.bytes() + m.kv_block_bytes;
  u.peak_rss_bytes = peak_rss_bytes();
  u.scratch_bytes = workspace_bytes_live();
  u.scratch_peak_bytes = workspace_bytes_peak();
  return u;
}

}  // namespace ps
