// The Node-API binding: a thin layer over the core (native-addon/core).
// Its JavaScript shape is declared in electron/engine/native.ts.
#pragma once

#include <napi.h>

namespace psb {

Napi::Object InitOps(Napi::Env env);
Napi::Function InitEngineClass(Napi::Env env);
Napi::Value EstimateMemory(const Napi::CallbackInfo& info);

}  // namespace psb
