// Low-level ops for tests, benchmarks and merging: addon.ops.*
#include <memory>
#include <mutex>

#include "backend/cpu/cpu_backend.h"
#include "binding.h"
#include "convert.h"
#include "error.h"

namespace psb {

namespace {

// One CPU backend per thread count, created on first use.
ps::CpuBackend& backend_for(int threads) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<ps::CpuBackend>> backends;
  std::lock_guard<std::mutex> lock(mu);
  for (auto& b : backends)
    if (b->threads() == threads) return *b;
  backends.emplace_back(new ps::CpuBackend(threads));
  return *backends.back();
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 9 || !info[0].IsString()) type_error(env, "gemm(layout, M, N, K, alpha, A, B, beta, C[, threads])");
  std::string layout = info[0].As<Napi::String>().Utf8Value();
  auto num = [&](size_t i, const char* name) {
    if (!info[i].IsNumber()) type_error(env, std::string(name) + " must be a number");
    return info[i].As<Napi::Number>().DoubleValue();
  };
  const int M = static_cast<int>(num(1, "M")), N = static_cast<int>(num(2, "N")), K = static_cast<int>(num(3, "K"));
  const float alpha = static_cast<float>(num(4, "alpha"));
  Napi::Float32Array A = float32_value(env, info[5], "A");
  Napi::Float32Array B = float32_value(env, info[6], "B");
  const float beta = static_cast<float>(num(7, "beta"));
  Napi::Float32Array C = float32_value(env, info[8], "C");
  int threads = info.Length() > 9 && info[9].IsNumber() ? info[9].As<Napi::Number>().Int32Value() : ps::hardware_threads();
  if (M < 0 || N < 0 || K < 0) type_error(env, "gemm: M, N, K must be non-negative");
  if (beta != 0.0f && beta != 1.0f) type_error(env, "gemm: beta must be 0 or 1");
  const size_t m = M, n = N, k = K;
  if (A.ElementLength() < m * k || B.ElementLength() < n * k || C.ElementLength() < m * n)
    type_error(env, "gemm: an array is smaller than its shape");
  ps::CpuBackend& be = backend_for(threads);
  if (layout == "nt")
    be.gemm_nt(M, N, K, alpha, A.Data(), K, B.Data(), K, beta, C.Data(), N);
  else if (layout == "nn")
    be.gemm_nn(M, N, K, alpha, A.Data(), K, B.Data(), N, beta, C.Data(), N);
  else if (layout == "tn")
    be.gemm_tn(M, N, K, alpha, A.Data(), M, B.Data(), N, beta, C.Data(), N);
  else
    type_error(env, "gemm: layout must be 'nt', 'nn' or 'tn'");
  return env.Undefined();
}

}  // namespace

Napi::Object InitOps(Napi::Env env) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  return ops;
}

}  // namespace psb
