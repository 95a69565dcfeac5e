// addon.Engine: a JavaScript class over ps::Engine. Slow calls (a training
// step, an evaluation, a decode) run in an AsyncWorker and return a Promise;
// the engine is not thread-safe, so a second call while one is running is
// refused with a clear error instead of racing.
#include <memory>

#include "binding.h"
#include "convert.h"
#include "engine.h"
#include "engine_thread.h"
#include "error.h"

namespace psb {

ps::DType dtype_from(Napi::Env env, const std::string& s) {
  if (s == "F32") return ps::DType::F32;
  if (s == "F16") return ps::DType::F16;
  if (s == "BF16") return ps::DType::BF16;
  if (s == "U8") return ps::DType::U8;
  type_error(env, "dtype must be F32, F16, BF16 or U8 (got " + s + ")");
}

namespace {

// ref.nf4: {blocksize, shape, doubleQuant, nestedBlocksize, nestedOffset} (bitsandbytes quant_state).
ps::Nf4QuantState nf4_state_from(Napi::Env env, Napi::Object o, const std::string& name) {
  ps::Nf4QuantState st;
  st.blocksize = int_field(o, "blocksize");
  st.shape = shape_value(env, o.Get("shape"), "nf4.shape of " + name);
  st.double_quant = bool_field(o, "doubleQuant");
  if (st.double_quant) {
    st.nested_blocksize = int_field(o, "nestedBlocksize");
    st.nested_offset = static_cast<float>(number_field(o, "nestedOffset"));
  }
  return st;
}

}  // namespace

ps::QuantizationOptions quantization_from(Napi::Env env, Napi::Value v) {
  ps::QuantizationOptions q;
  if (v.IsUndefined() || v.IsNull()) return q;
  if (!v.IsObject()) type_error(env, "quantization must be null or {type: 'nf4', blocksize, doubleQuant}");
  Napi::Object o = v.As<Napi::Object>();
  const std::string type = string_field(o, "type");
  if (type != "nf4") type_error(env, "quantization.type must be 'nf4' (got " + type + ")");
  q.type = ps::QuantizationOptions::Type::Nf4;
  q.blocksize = int_field(o, "blocksize");
  q.double_quant = bool_field(o, "doubleQuant");
  return q;
}

ps::ModelSpec spec_from(Napi::Object o) {
  ps::ModelSpec s;
  s.architecture = string_field(o, "architecture");
  s.vocab_size = int_field(o, "vocabSize");
  s.hidden_size = int_field(o, "hiddenSize");
  s.intermediate_size = int_field(o, "intermediateSize");
  s.num_layers = int_field(o, "numLayers");
  s.num_heads = int_field(o, "numHeads");
  s.num_kv_heads = int_field(o, "numKvHeads");
  s.head_dim = int_field(o, "headDim");
  s.rms_norm_eps = static_cast<float>(number_field(o, "rmsNormEps"));
  s.rope_theta = static_cast<float>(number_field(o, "ropeTheta"));
  Napi::Object rs = object_field(o, "ropeScaling");
  std::string type = string_field(rs, "type");
  if (type == "none") s.rope_scaling = ps::RopeScaling::None;
  else if (type == "linear") s.rope_scaling = ps::RopeScaling::Linear;
  else if (type == "llama3") s.rope_scaling = ps::RopeScaling::Llama3;
  else type_error(o.Env(), "ropeScaling.type must be none, linear or llama3 (got " + type + ")");
  s.rope_factor = static_cast<float>(number_field(rs, "factor"));
  s.rope_low_freq_factor = static_cast<float>(number_field(rs, "lowFreqFactor"));
  s.rope_high_freq_factor = static_cast<float>(number_field(rs, "highFreqFactor"));
  s.rope_original_max_position = int_field(rs, "originalMaxPosition");
  s.max_position_embeddings = int_field(o, "maxPositionEmbeddings");
  s.tie_word_embeddings = bool_field(o, "tieWordEmbeddings");
  s.attention_bias = bool_field(o, "attentionBias");
  s.qk_norm = bool_field(o, "qkNorm");
  return s;
}

std::vector<std::string> string_list(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsArray()) type_error(env, name + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) type_error(env, name + " must be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

std::optional<std::vector<int>> layer_list(Napi::Env env, Napi::Value v) {
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  std::vector<int64_t> l = shape_value(env, v, "layers");
  return std::vector<int>(l.begin(), l.end());
}

ps::OptimizerStep::Kind optimizer_kind(Napi::Env env, const std::string& s) {
  if (s == "adamw") return ps::OptimizerStep::Kind::AdamW;
  if (s == "sgd") return ps::OptimizerStep::Kind::Sgd;
  type_error(env, "optimizer must be 'adamw' or 'sgd' (got " + s + ")");
}

namespace {

ps::Batch batch_from(Napi::Env env, Napi::Object o) {
  ps::Batch b;
  b.batch_size = int_field(o, "batchSize");
  b.seq_len = int_field(o, "seqLen");
  if (b.batch_size <= 0 || b.seq_len <= 0) type_error(env, "batchSize and seqLen must be positive");
  const size_t n = static_cast<size_t>(b.batch_size) * b.seq_len;
  auto take = [&](const char* key, std::vector<int32_t>& out) {
    Napi::Int32Array a = int32_value(env, o.Get(key), std::string("batch.") + key);
    if (a.ElementLength() != n)
      type_error(env, std::string("batch.") + key + " must have batchSize*seqLen = " + std::to_string(n) +
                          " elements (has " + std::to_string(a.ElementLength()) + ")");
    out.assign(a.Data(), a.Data() + n);
  };
  take("inputIds", b.input_ids);
  take("labels", b.labels);
  take("segments", b.segments);
  take("positions", b.positions);
  return b;
}

Napi::Object loss_to_js(Napi::Env env, const ps::LossResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("lossSum", r.loss_sum);
  o.Set("tokens", static_cast<double>(r.tokens));
  return o;
}

Napi::Float32Array floats_to_js(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

class EngineWrap;

// Runs fn on the engine's thread (engine_thread.h) from a libuv worker, resolves
// with to_js(result) or rejects with the message.
template <typename Result>
class EngineTask : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, const Result&)>;
  EngineTask(Napi::Env env, Napi::Object self, bool* busy, EngineThread* thread, Work work, ToJs to_js)
      : Napi::AsyncWorker(env, "peft-studio-engine"),
        deferred_(Napi::Promise::Deferred::New(env)),
        self_(Napi::Persistent(self)),
        busy_(busy),
        thread_(thread),
        work_(std::move(work)),
        to_js_(std::move(to_js)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      thread_->run([this] { result_ = work_(); });
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    *busy_ = false;
    deferred_.Resolve(to_js_(Env(), result_));
  }
  void OnError(const Napi::Error& e) override {
    *busy_ = false;
    deferred_.Reject(Napi::Error::New(Env(), e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference self_;  // keeps the engine alive while the task runs
  bool* busy_;
  EngineThread* thread_;  // the EngineWrap's, alive while self_ is
  Work work_;
  ToJs to_js_;
  Result result_{};
};

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod("loadWeights", &EngineWrap::LoadWeights),
                           InstanceMethod("setupLora", &EngineWrap::SetupLora),
                           InstanceMethod("setupFull", &EngineWrap::SetupFull),
                           InstanceMethod("setupPromptTuning", &EngineWrap::SetupPromptTuning),
                           InstanceMethod("setupPrefixTuning", &EngineWrap::SetupPrefixTuning),
                           InstanceMethod("prefixTable", &EngineWrap::PrefixTable),
                           InstanceMethod("parameters", &EngineWrap::Parameters),
                           InstanceMethod("getTensor", &EngineWrap::GetTensor),
                           InstanceMethod("setTensor", &EngineWrap::SetTensor),
                           InstanceMethod("getGradient", &EngineWrap::GetGradient),
                           InstanceMethod("nonFiniteTensors", &EngineWrap::NonFiniteTensors),
                           InstanceMethod("forwardBackward", &EngineWrap::ForwardBackward),
                           InstanceMethod("evaluate", &EngineWrap::Evaluate),
                           InstanceMethod("optimizerStep", &EngineWrap::OptimizerStep),
                           InstanceMethod("getOptimizerState", &EngineWrap::GetOptimizerState),
                           InstanceMethod("setOptimizerState", &EngineWrap::SetOptimizerState),
                           InstanceMethod("dropoutCounter", &EngineWrap::DropoutCounter),
                           InstanceMethod("setDropoutCounter", &EngineWrap::SetDropoutCounter),
                           InstanceMethod("resetCache", &EngineWrap::ResetCache),
                           InstanceMethod("decode", &EngineWrap::Decode),
                           InstanceMethod("memory", &EngineWrap::Memory),
                           InstanceMethod("describe", &EngineWrap::Describe),
                           InstanceMethod("dispose", &EngineWrap::Dispose),
                       });
  }

  EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    ps::ModelSpec spec = spec_from(object_arg(info, 0, "spec"));
    Napi::Object o = object_arg(info, 1, "options");
    ps::EngineOptions opts;
    // device: optional, 'cpu' when absent (engines created before it existed).
    Napi::Value device = o.Get("device");
    if (!device.IsUndefined() && !device.IsNull()) {
      if (!device.IsString()) type_error(env, "field 'device' must be 'cpu' or 'cuda'");
      opts.device = device.As<Napi::String>().Utf8Value();
    }
    // precision: optional, 'fp32' when absent; make_backend checks the value.
    Napi::Value precision = o.Get("precision");
    if (!precision.IsUndefined() && !precision.IsNull()) {
      if (!precision.IsString()) type_error(env, "field 'precision' must be 'fp32', 'bf16' or 'auto'");
      opts.precision = precision.As<Napi::String>().Utf8Value();
    }
    opts.threads = int_field(o, "threads");
    opts.gradient_checkpointing = bool_field(o, "gradientCheckpointing");
    opts.seed = static_cast<uint64_t>(number_field(o, "seed"));
    Napi::Value neft = o.Get("neftuneAlpha");
    if (!neft.IsUndefined()) {
      if (!neft.IsNumber()) type_error(env, "field 'neftuneAlpha' must be a number");
      opts.neftune_alpha = neft.As<Napi::Number>().FloatValue();
    }
    opts.quantization = quantization_from(env, o.Get("quantization"));
    try {
      // made, used and destroyed on its own thread (a CUDA device's current context is
      // per thread): every call that reaches the engine's memory runs there, also the
      // synchronous ones (reset_cache runs a soft prompt through the model; a tensor
      // read or write is a device copy on a GPU)
      thread_ = std::make_unique<EngineThread>();
      engine_ = thread_->call([&] { return std::make_unique<ps::Engine>(spec, opts); });
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  ~EngineWrap() override { release(); }

 private:
  // The engine is destroyed on its thread; then the thread ends, and with it the scratch it kept.
  void release() {
    if (thread_) thread_->run([this] { engine_.reset(); });
    thread_.reset();
  }

  ps::Engine& engine(Napi::Env env) {
    if (!engine_) throw Napi::Error::New(env, "peft-studio native: the engine was disposed");
    if (busy_) throw Napi::Error::New(env, "peft-studio native: the engine is busy with another call; await it first");
    return *engine_;
  }

  template <typename Result>
  Napi::Value queue(const Napi::CallbackInfo& info, std::function<Result()> work,
                    std::function<Napi::Value(Napi::Env, const Result&)> to_js) {
    auto* task = new EngineTask<Result>(info.Env(), info.This().As<Napi::Object>(), &busy_, thread_.get(),
                                       std::move(work), std::move(to_js));
    busy_ = true;
    Napi::Promise p = task->promise();
    task->Queue();
    return p;
  }

  Napi::Value LoadWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    if (info.Length() < 1 || !info[0].IsArray()) type_error(env, "loadWeights(refs): refs must be an array");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<ps::WeightRef> refs;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) type_error(env, "loadWeights: every ref must be an object");
      Napi::Object o = v.As<Napi::Object>();
      ps::WeightRef r;
      r.name = string_field(o, "name");
      r.file = string_field(o, "file");
      double off = number_field(o, "offset");
      if (off < 0) type_error(env, "loadWeights: offset must be non-negative");
      r.offset = static_cast<uint64_t>(off);
      r.dtype = dtype_from(env, string_field(o, "dtype"));
      r.shape = shape_value(env, o.Get("shape"), "shape of " + r.name);
      Napi::Value nf4 = o.Get("nf4");
      if (nf4.IsObject()) r.nf4 = nf4_state_from(env, nf4.As<Napi::Object>(), r.name);
      else if (!nf4.IsUndefined() && !nf4.IsNull()) type_error(env, "loadWeights: nf4 of " + r.name + " must be an object");
      refs.push_back(std::move(r));
    }
    guarded(env, [&] { thread_->call([&] { e.load_weights(refs); }); });
    return env.Undefined();
  }

  Napi::Value SetupLora(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    Napi::Object o = object_arg(info, 0, "options");
    ps::LoraOptions l;
    l.rank = int_field(o, "rank");
    l.alpha = static_cast<float>(number_field(o, "alpha"));
    l.dropout = static_cast<float>(number_field(o, "dropout"));
    l.rslora = bool_field(o, "rslora");
    l.targets = string_list(env, o.Get("targets"), "targets");
    l.layers = layer_list(env, o.Get("layers"));
    std::string init = string_field(o, "init");
    if (init == "default") l.init = ps::LoraInit::Default;
    else if (init == "gaussian") l.init = ps::LoraInit::Gaussian;
    else type_error(env, "init must be 'default' or 'gaussian'");
    l.seed = static_cast<uint64_t>(number_field(o, "seed"));
    l.dora = optional_bool_field(env, o, "dora");
    guarded(env, [&] { thread_->call([&] { e.setup_lora(l); }); });
    return env.Undefined();
  }

  Napi::Value SetupFull(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    guarded(env, [&] { thread_->call([&] { e.setup_full(); }); });
    return env.Undefined();
  }

  // {numVirtualTokens, init: Float32Array [numVirtualTokens * hiddenSize]}
  Napi::Value SetupPromptTuning(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    Napi::Object o = object_arg(info, 0, "options");
    ps::PromptTuningOptions p;
    p.num_virtual_tokens = int_field(o, "numVirtualTokens");
    Napi::Float32Array init = float32_value(env, o.Get("init"), "options.init");
    p.init.assign(init.Data(), init.Data() + init.ElementLength());
    guarded(env, [&] { thread_->call([&] { e.setup_prompt_tuning(p); }); });
    return env.Undefined();
  }

  // {numVirtualTokens, projection: {encoderHiddenSize} | null, seed}
  Napi::Value SetupPrefixTuning(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    Napi::Object o = object_arg(info, 0, "options");
    ps::PrefixTuningOptions p;
    p.num_virtual_tokens = int_field(o, "numVirtualTokens");
    Napi::Value proj = o.Get("projection");
    if (proj.IsObject()) {
      p.projection = true;
      p.encoder_hidden_size = int_field(proj.As<Napi::Object>(), "encoderHiddenSize");
    } else if (!proj.IsNull() && !proj.IsUndefined()) {
      type_error(env, "options.projection must be null or {encoderHiddenSize}");
    }
    const double seed = number_field(o, "seed");
    if (seed < 0) type_error(env, "options.seed must be a non-negative integer");
    p.seed = static_cast<uint64_t>(seed);
    guarded(env, [&] { thread_->call([&] { e.setup_prefix_tuning(p); }); });
    return env.Undefined();
  }

  Napi::Value PrefixTable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    return floats_to_js(env, guarded(env, [&] { return thread_->call([&] { return e.prefix_table(); }); }));
  }

  Napi::Value Parameters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    auto params = guarded(env, [&] { return thread_->call([&] { return e.parameters(); }); });
    Napi::Array out = Napi::Array::New(env, params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", params[i].name);
      o.Set("shape", shape_to_js(env, params[i].shape));
      o.Set("trainable", params[i].trainable);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  std::string name_arg(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsString()) type_error(info.Env(), "the tensor name must be a string");
    return info[0].As<Napi::String>().Utf8Value();
  }

  Napi::Value GetTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    std::string name = name_arg(info);
    return floats_to_js(env, guarded(env, [&] { return thread_->call([&] { return e.get_tensor(name); }); }));
  }

  Napi::Value GetGradient(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    std::string name = name_arg(info);
    return floats_to_js(env, guarded(env, [&] { return thread_->call([&] { return e.get_gradient(name); }); }));
  }

  // Off the main thread: it reads every weight (seconds on a large model).
  Napi::Value NonFiniteTensors(const Napi::CallbackInfo& info) {
    ps::Engine& e = engine(info.Env());
    return queue<std::vector<ps::NonFiniteTensor>>(
        info, [&e] { return e.non_finite_tensors(); },
        [](Napi::Env env, const std::vector<ps::NonFiniteTensor>& found) -> Napi::Value {
          Napi::Array out = Napi::Array::New(env, found.size());
          for (size_t i = 0; i < found.size(); ++i) {
            Napi::Object o = Napi::Object::New(env);
            o.Set("name", found[i].name);
            o.Set("trainable", found[i].trainable);
            o.Set("nan", static_cast<double>(found[i].nan));
            o.Set("inf", static_cast<double>(found[i].inf));
            out.Set(static_cast<uint32_t>(i), o);
          }
          return out;
        });
  }

  Napi::Value SetTensor(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    std::string name = name_arg(info);
    if (info.Length() < 2) type_error(env, "setTensor(name, data)");
    Napi::Float32Array a = float32_value(env, info[1], "data");
    guarded(env, [&] { thread_->call([&] { e.set_tensor(name, a.Data(), a.ElementLength()); }); });
    return env.Undefined();
  }

  Napi::Value ForwardBackward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    auto batch = std::make_shared<ps::Batch>(batch_from(env, object_arg(info, 0, "batch")));
    if (info.Length() < 2 || !info[1].IsNumber()) type_error(env, "forwardBackward(batch, gradScale): gradScale must be a number");
    float scale = info[1].As<Napi::Number>().FloatValue();
    return queue<ps::LossResult>(info, [&e, batch, scale] { return e.forward_backward(*batch, scale); }, loss_to_js);
  }

  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    auto batch = std::make_shared<ps::Batch>(batch_from(env, object_arg(info, 0, "batch")));
    return queue<ps::LossResult>(info, [&e, batch] { return e.evaluate(*batch); }, loss_to_js);
  }

  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    Napi::Object o = object_arg(info, 0, "step");
    ps::OptimizerStep s;
    s.kind = optimizer_kind(env, string_field(o, "kind"));
    s.lr = static_cast<float>(number_field(o, "lr"));
    s.beta1 = static_cast<float>(number_field(o, "beta1"));
    s.beta2 = static_cast<float>(number_field(o, "beta2"));
    s.eps = static_cast<float>(number_field(o, "eps"));
    s.weight_decay = static_cast<float>(number_field(o, "weightDecay"));
    s.max_grad_norm = static_cast<float>(number_field(o, "maxGradNorm"));
    return queue<double>(info, [&e, s] { return e.optimizer_step(s); }, [](Napi::Env env, const double& norm) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("gradNorm", norm);
      return r;
    });
  }

  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    ps::OptimizerState st = guarded(env, [&] { return thread_->call([&] { return e.get_optimizer_state(); }); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("step", static_cast<double>(st.step));
    Napi::Array tensors = Napi::Array::New(env, st.tensors.size());
    for (size_t i = 0; i < st.tensors.size(); ++i) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", st.tensors[i].name);
      t.Set("m", floats_to_js(env, st.tensors[i].m));
      t.Set("v", floats_to_js(env, st.tensors[i].v));
      tensors.Set(static_cast<uint32_t>(i), t);
    }
    o.Set("tensors", tensors);
    return o;
  }

  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    Napi::Object o = object_arg(info, 0, "state");
    ps::OptimizerState st;
    st.step = static_cast<int64_t>(number_field(o, "step"));
    Napi::Value tv = o.Get("tensors");
    if (!tv.IsArray()) type_error(env, "state.tensors must be an array");
    Napi::Array arr = tv.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) type_error(env, "state.tensors entries must be objects");
      Napi::Object t = v.As<Napi::Object>();
      ps::OptimizerTensorState ts;
      ts.name = string_field(t, "name");
      Napi::Float32Array m = float32_value(env, t.Get("m"), "state.tensors[].m");
      Napi::Float32Array vv = float32_value(env, t.Get("v"), "state.tensors[].v");
      ts.m.assign(m.Data(), m.Data() + m.ElementLength());
      ts.v.assign(vv.Data(), vv.Data() + vv.ElementLength());
      st.tensors.push_back(std::move(ts));
    }
    guarded(env, [&] { thread_->call([&] { e.set_optimizer_state(st); }); });
    return env.Undefined();
  }

  Napi::Value DropoutCounter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Napi::Number::New(env, static_cast<double>(engine(env).dropout_counter()));
  }

  Napi::Value SetDropoutCounter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    if (info.Length() < 1 || !info[0].IsNumber()) type_error(env, "setDropoutCounter(n)");
    e.set_dropout_counter(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
    return env.Undefined();
  }

  Napi::Value ResetCache(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    if (info.Length() < 1 || !info[0].IsNumber()) type_error(env, "resetCache(maxTokens)");
    int n = info[0].As<Napi::Number>().Int32Value();
    guarded(env, [&] { thread_->call([&] { e.reset_cache(n); }); });
    return env.Undefined();
  }

  Napi::Value Decode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::Engine& e = engine(env);
    if (info.Length() < 1) type_error(env, "decode(tokens)");
    Napi::Int32Array t = int32_value(env, info[0], "tokens");
    auto tokens = std::make_shared<std::vector<int32_t>>(t.Data(), t.Data() + t.ElementLength());
    return queue<std::vector<float>>(
        info, [&e, tokens] { return e.decode(tokens->data(), tokens->size()); },
        [](Napi::Env env, const std::vector<float>& logits) -> Napi::Value { return floats_to_js(env, logits); });
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ps::MemoryUsage m = engine(env).memory();
    Napi::Object o = Napi::Object::New(env);
    o.Set("weightBytes", static_cast<double>(m.weight_bytes));
    o.Set("quantizedBytes", static_cast<double>(m.quantized_bytes));
    o.Set("quantizedParams", static_cast<double>(m.quantized_params));
    o.Set("trainableBytes", static_cast<double>(m.trainable_bytes));
    o.Set("activationBytes", static_cast<double>(m.activation_bytes));
    o.Set("kvCacheBytes", static_cast<double>(m.kv_cache_bytes));
    o.Set("peakRssBytes", static_cast<double>(m.peak_rss_bytes));
    o.Set("scratchBytes", static_cast<double>(m.scratch_bytes));
    o.Set("scratchPeakBytes", static_cast<double>(m.scratch_peak_bytes));
    return o;
  }

  Napi::Value Describe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Napi::String::New(env, engine(env).describe());
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (busy_) throw Napi::Error::New(env, "peft-studio native: cannot dispose the engine while a call is running");
    release();
    return env.Undefined();
  }

  // The engine's own thread (engine_thread.h): every call that computes runs on it.
  std::unique_ptr<EngineThread> thread_;
  std::unique_ptr<ps::Engine> engine_;  // after thread_: destroyed before it
  bool busy_ = false;
};

}  // namespace

Napi::Function InitEngineClass(Napi::Env env) { return EngineWrap::Define(env); }

}  // namespace psb
