// Module entry: what require('peft_studio.node') returns.
#include "backend/cpu/cpu_backend.h"
#include "backend_factory.h"
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

// Every GPU the CUDA runtime counts, in index order, each with its own index
// and `error` ('' when usable, else why not): [] without the CUDA backend or a GPU.
Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<ps::DeviceInfo> devices = ps::list_devices();
  Napi::Array out = Napi::Array::New(env, devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    const ps::DeviceInfo& d = devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("totalBytes", static_cast<double>(d.total_bytes));
    o.Set("freeBytes", static_cast<double>(d.free_bytes));
    o.Set("error", d.error);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// Why the CUDA runtime counts no GPU ('' when it counts one, or in a build without the CUDA backend).
Napi::Value GpuRuntimeProblem(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ps::gpu_runtime_problem());
}

}  // namespace

}  // namespace psb

static Napi::Object InitPeftStudio(Napi::Env env, Napi::Object exports) {
  using namespace psb;
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("gpuRuntimeProblem", Napi::Function::New(env, GpuRuntimeProblem, "gpuRuntimeProblem"));
  // whether this build has the CUDA backend (with or without a GPU present)
  exports.Set("cudaBackend", Napi::Boolean::New(env, ps::have_cuda_backend()));
  exports.Set("ops", InitOps(env));
  exports.Set("estimateMemory", Napi::Function::New(env, EstimateMemory, "estimateMemory"));
  exports.Set("Engine", InitEngineClass(env));
  return exports;
}

NODE_API_MODULE(peft_studio, InitPeftStudio)
