// The Node-API binding: a thin layer over the core (native-addon/core).
// Its JavaScript shape is declared in electron/engine/native.ts.
#pragma once

#include <napi.h>

#include <optional>
#include <string>
#include <vector>

#include "engine.h"

namespace psb {

// Conversions shared by the Engine class and estimateMemory (engine_wrap.cpp).
ps::ModelSpec spec_from(Napi::Object o);
std::vector<std::string> string_list(Napi::Env env, Napi::Value v, const std::string& name);
std::optional<std::vector<int>> layer_list(Napi::Env env, Napi::Value v);
ps::OptimizerStep::Kind optimizer_kind(Napi::Env env, const std::string& s);
// "F32" | "F16" | "BF16" | "U8" (a WeightRef's dtype)
ps::DType dtype_from(Napi::Env env, const std::string& s);
// options.quantization: undefined / null (none) or {type: 'nf4', blocksize, doubleQuant}.
ps::QuantizationOptions quantization_from(Napi::Env env, Napi::Value v);

// Runs a synchronous core call, turning C++ errors into JS errors with the core's message.
template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Object InitOps(Napi::Env env);
Napi::Function InitEngineClass(Napi::Env env);
Napi::Value EstimateMemory(const Napi::CallbackInfo& info);

}  // namespace psb
