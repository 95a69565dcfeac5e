// Module entry: what require('peft_studio.node') returns.
#include "backend/cpu/cpu_backend.h"
#include "binding.h"

namespace psb {

namespace {

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ps::CpuFeatures f = ps::detect_cpu_features();
  ps::CpuBackend probe(1);
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("hardwareThreads", ps::hardware_threads());
  o.Set("kernel", probe.use_avx2() ? "avx2+fma" : "portable");
  return o;
}

}  // namespace

}  // namespace psb

static Napi::Object InitPeftStudio(Napi::Env env, Napi::Object exports) {
  using namespace psb;
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("ops", InitOps(env));
  exports.Set("estimateMemory", Napi::Function::New(env, EstimateMemory, "estimateMemory"));
  exports.Set("Engine", InitEngineClass(env));
  return exports;
}

NODE_API_MODULE(peft_studio, InitPeftStudio)
