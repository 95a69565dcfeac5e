// Low-level ops for tests, benchmarks and merging: addon.ops.*
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>

#include "backend/cpu/cpu_backend.h"
#include "binding.h"
#include "convert.h"
#include "error.h"
#include "quant/nf4_quantize.h"
#include "quant/nf4_tables.h"

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

// backend_for with its errors as JS errors (a thread count the system cannot start is one).
ps::CpuBackend& backend_checked(Napi::Env env, int threads) {
  return guarded(env, [&]() -> ps::CpuBackend& { return backend_for(threads); });
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
  ps::CpuBackend& be = backend_checked(info.Env(), threads);
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


// ---- NF4 ---------------------------------------------------------------------
// A JS Nf4Tensor mirrors what bitsandbytes saves per layer: {rows, cols,
// blocksize, codes: Uint8Array, absmax: Float32Array (no double quantization)
// | Uint8Array (its 8-bit codes), nestedAbsmax?: Float32Array, nestedOffset?,
// nestedBlocksize?, quantMap?: Float32Array(16), nestedQuantMap?:
// Float32Array(256), residentBytes}.


int threads_arg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Int32Value()
                                                 : ps::hardware_threads();
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const std::string& name) {
  if (info.Length() <= i || !info[i].IsNumber()) type_error(info.Env(), name + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != std::floor(v) || v < 0 || v > 2147483647.0)
    type_error(info.Env(), name + " must be a non-negative integer below 2^31, got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

Napi::Uint8Array uint8_value(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    type_error(env, name + " must be a Uint8Array");
  return v.As<Napi::Uint8Array>();
}

template <typename T>
Napi::TypedArrayOf<T> copy_out(Napi::Env env, const std::vector<T>& v) {
  auto a = Napi::TypedArrayOf<T>::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

Napi::Float32Array floats_out(Napi::Env env, const float* p, size_t n) {
  auto a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), p, n * sizeof(float));
  return a;
}

// Reads a JS Nf4Tensor into a view (pointing into the JS arrays, which the
// caller keeps alive for the call), checking every length.
ps::Nf4Weight nf4_from(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsObject()) type_error(env, name + " must be an NF4 tensor object (from ops.nf4Quantize)");
  Napi::Object o = v.As<Napi::Object>();
  auto integer = [&](const char* key) {
    Napi::Value f = o.Get(key);
    if (!f.IsNumber()) type_error(env, name + "." + key + " must be a number");
    const double d = f.As<Napi::Number>().DoubleValue();
    if (d != std::floor(d) || d <= 0 || d > 2147483647.0)
      type_error(env, name + "." + key + " must be a positive integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  };
  ps::Nf4Weight W;
  W.rows = integer("rows");
  W.cols = integer("cols");
  W.blocksize = static_cast<int>(integer("blocksize"));
  guarded(env, [&] { ps::nf4_check_blocksize(W.blocksize); });
  const int64_t n = W.rows * W.cols, blocks = W.blocks();
  Napi::Uint8Array codes = uint8_value(env, o.Get("codes"), name + ".codes");
  if ((int64_t)codes.ElementLength() != (n + 1) / 2)
    type_error(env, name + ".codes has " + std::to_string(codes.ElementLength()) + " bytes; a [" +
                        std::to_string(W.rows) + ", " + std::to_string(W.cols) + "] weight needs " +
                        std::to_string((n + 1) / 2));
  W.codes = codes.Data();
  Napi::Value qm = o.Get("quantMap");
  if (!qm.IsUndefined() && !qm.IsNull()) {
    Napi::Float32Array m = float32_value(env, qm, name + ".quantMap");
    const float* t = ps::nf4_code_table();
    if (m.ElementLength() != 16 || std::memcmp(m.Data(), t, 16 * sizeof(float)) != 0)
      type_error(env, name + ".quantMap is not the NF4 code table (only quant_type 'nf4' is supported)");
  }
  Napi::Value am = o.Get("absmax");
  if (am.IsTypedArray() && am.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    Napi::Float32Array a = am.As<Napi::Float32Array>();
    if ((int64_t)a.ElementLength() != blocks)
      type_error(env, name + ".absmax has " + std::to_string(a.ElementLength()) + " values, want " +
                          std::to_string(blocks) + " (one per block)");
    W.absmax = a.Data();
    return W;
  }
  Napi::Uint8Array ac = uint8_value(env, am, name + ".absmax (Float32Array, or Uint8Array with double quantization)");
  if ((int64_t)ac.ElementLength() != blocks)
    type_error(env, name + ".absmax has " + std::to_string(ac.ElementLength()) + " codes, want " +
                        std::to_string(blocks) + " (one per block)");
  W.absmax_codes = ac.Data();
  Napi::Value nbsv = o.Get("nestedBlocksize");
  W.nested_blocksize = nbsv.IsUndefined() ? ps::kNf4NestedBlocksize : static_cast<int>(integer("nestedBlocksize"));
  Napi::Float32Array na = float32_value(env, o.Get("nestedAbsmax"), name + ".nestedAbsmax");
  const int64_t nested = (blocks + W.nested_blocksize - 1) / W.nested_blocksize;
  if ((int64_t)na.ElementLength() != nested)
    type_error(env, name + ".nestedAbsmax has " + std::to_string(na.ElementLength()) + " values, want " +
                        std::to_string(nested));
  W.nested_absmax = na.Data();
  Napi::Value off = o.Get("nestedOffset");
  if (!off.IsNumber()) type_error(env, name + ".nestedOffset must be a number with double quantization");
  W.nested_offset = off.As<Napi::Number>().FloatValue();
  Napi::Value nm = o.Get("nestedQuantMap");
  if (nm.IsUndefined() || nm.IsNull()) {
    W.absmax_map = ps::dynamic_map_signed();
  } else {
    Napi::Float32Array m = float32_value(env, nm, name + ".nestedQuantMap");
    if (m.ElementLength() != 256) type_error(env, name + ".nestedQuantMap must hold 256 values");
    W.absmax_map = m.Data();
  }
  return W;
}

// nf4Quantize(w, rows, cols, {blocksize = 64, doubleQuant = true})
Napi::Value Nf4Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) type_error(env, "nf4Quantize(w, rows, cols[, {blocksize, doubleQuant}])");
  Napi::Float32Array w = float32_value(env, info[0], "w");
  const int64_t rows = int_arg(info, 1, "rows"), cols = int_arg(info, 2, "cols");
  int blocksize = ps::kNf4DefaultBlocksize;
  bool double_quant = true;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsObject()) type_error(env, "nf4Quantize: options must be an object");
    Napi::Object o = info[3].As<Napi::Object>();
    Napi::Value b = o.Get("blocksize"), d = o.Get("doubleQuant");
    if (!b.IsUndefined()) {
      const double v = b.IsNumber() ? b.As<Napi::Number>().DoubleValue() : -1;
      if (!(v >= 1 && v <= 65536 && v == static_cast<double>(static_cast<int>(v))))
        type_error(env, "nf4Quantize: blocksize must be an integer (32..4096, a power of two)");
      blocksize = static_cast<int>(v);
    }
    if (!d.IsUndefined()) {
      if (!d.IsBoolean()) type_error(env, "nf4Quantize: doubleQuant must be a boolean");
      double_quant = d.As<Napi::Boolean>().Value();
    }
  }
  if ((int64_t)w.ElementLength() != rows * cols)
    type_error(env, "nf4Quantize: w has " + std::to_string(w.ElementLength()) + " values, [" +
                        std::to_string(rows) + ", " + std::to_string(cols) + "] needs " +
                        std::to_string(rows * cols));
  const ps::Nf4Quantized q =
      guarded(env, [&] { return ps::nf4_quantize(w.Data(), rows, cols, blocksize, double_quant); });
  Napi::Object out = Napi::Object::New(env);
  out.Set("rows", Napi::Number::New(env, (double)rows));
  out.Set("cols", Napi::Number::New(env, (double)cols));
  out.Set("blocksize", Napi::Number::New(env, blocksize));
  out.Set("codes", copy_out(env, q.codes));
  out.Set("quantMap", floats_out(env, ps::nf4_code_table(), 16));
  if (q.double_quant()) {
    out.Set("absmax", copy_out(env, q.absmax_codes));
    out.Set("nestedAbsmax", copy_out(env, q.nested_absmax));
    out.Set("nestedOffset", Napi::Number::New(env, q.nested_offset));
    out.Set("nestedBlocksize", Napi::Number::New(env, ps::kNf4NestedBlocksize));
    out.Set("nestedQuantMap", floats_out(env, ps::dynamic_map_signed(), 256));
  } else {
    out.Set("absmax", copy_out(env, q.absmax));
  }
  out.Set("residentBytes", Napi::Number::New(env, (double)q.resident_bytes()));
  return out;
}

// nf4Dequantize(q[, threads]) -> Float32Array [rows * cols]
Napi::Value Nf4Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ps::Nf4Weight W = nf4_from(env, info.Length() > 0 ? info[0] : env.Undefined(), "q");
  auto out = Napi::Float32Array::New(env, (size_t)W.numel());
  ps::CpuBackend& be = backend_checked(info.Env(), threads_arg(info, 1));
  guarded(env, [&] { be.nf4_dequantize(W, out.Data()); });
  return out;
}

// nf4Matmul(X, M, q[, {alpha = 1, beta = 0, Y, threads}]) -> Y [M, q.rows] = alpha X W^T + beta Y
Napi::Value Nf4Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) type_error(env, "nf4Matmul(X, M, q[, {alpha, beta, Y, threads}])");
  Napi::Float32Array X = float32_value(env, info[0], "X");
  const int64_t M = int_arg(info, 1, "M");
  const ps::Nf4Weight W = nf4_from(env, info[2], "q");
  float alpha = 1.0f, beta = 0.0f;
  int threads = ps::hardware_threads();
  Napi::Float32Array Y;
  if (info.Length() > 3 && info[3].IsObject()) {
    Napi::Object o = info[3].As<Napi::Object>();
    if (o.Get("alpha").IsNumber()) alpha = o.Get("alpha").As<Napi::Number>().FloatValue();
    if (o.Get("beta").IsNumber()) beta = o.Get("beta").As<Napi::Number>().FloatValue();
    if (o.Get("threads").IsNumber()) threads = o.Get("threads").As<Napi::Number>().Int32Value();
    if (!o.Get("Y").IsUndefined()) Y = float32_value(env, o.Get("Y"), "Y");
  }
  if (beta != 0.0f && beta != 1.0f) type_error(env, "nf4Matmul: beta must be 0 or 1");
  if ((int64_t)X.ElementLength() != M * W.cols)
    type_error(env, "nf4Matmul: X has " + std::to_string(X.ElementLength()) + " values, want M * cols = " +
                        std::to_string(M * W.cols));
  if (Y.IsEmpty()) {
    if (beta != 0.0f) type_error(env, "nf4Matmul: beta = 1 needs Y");
    Y = Napi::Float32Array::New(env, (size_t)(M * W.rows));
  } else if ((int64_t)Y.ElementLength() != M * W.rows) {
    type_error(env, "nf4Matmul: Y has " + std::to_string(Y.ElementLength()) + " values, want M * rows = " +
                        std::to_string(M * W.rows));
  }
  ps::CpuBackend& be = backend_checked(info.Env(), threads);
  guarded(env, [&] { be.nf4_gemm_nt((int)M, X.Data(), (int)W.cols, W, alpha, beta, Y.Data(), (int)W.rows); });
  return Y;
}

// loraMatmul(X, M, base, A, B, r, scale[, threads]) -> {Y, H}: the LoRA
// forward over a frozen base, Y = X W^T + scale (X A^T) B^T, H = X A^T.
// base: an NF4 tensor (QLoRA) or {weight: Float32Array, rows, cols} (fp32).
Napi::Value LoraMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7) type_error(env, "loraMatmul(X, M, base, A, B, r, scale[, threads])");
  Napi::Float32Array X = float32_value(env, info[0], "X");
  const int64_t M = int_arg(info, 1, "M");
  Napi::Float32Array A = float32_value(env, info[3], "A");
  Napi::Float32Array B = float32_value(env, info[4], "B");
  const int64_t r = int_arg(info, 5, "r");
  if (!info[6].IsNumber()) type_error(env, "scale must be a number");
  const float scale = info[6].As<Napi::Number>().FloatValue();
  ps::CpuBackend& be = backend_checked(info.Env(), threads_arg(info, 7));
  if (!info[2].IsObject()) type_error(env, "base must be an NF4 tensor or {weight, rows, cols}");
  Napi::Object bo = info[2].As<Napi::Object>();
  const bool fp32 = bo.Has("weight");
  ps::Nf4Weight W;
  Napi::Float32Array Wf;
  int64_t N, K;
  if (fp32) {
    Wf = float32_value(env, bo.Get("weight"), "base.weight");
    if (!bo.Get("rows").IsNumber() || !bo.Get("cols").IsNumber()) type_error(env, "base.rows and base.cols must be numbers");
    N = bo.Get("rows").As<Napi::Number>().Int64Value();
    K = bo.Get("cols").As<Napi::Number>().Int64Value();
    if (N <= 0 || K <= 0 || (int64_t)Wf.ElementLength() != N * K)
      type_error(env, "loraMatmul: base.weight must hold rows * cols values");
  } else {
    W = nf4_from(env, info[2], "base");
    N = W.rows, K = W.cols;
  }
  if (r <= 0) type_error(env, "loraMatmul: r must be positive");
  if ((int64_t)X.ElementLength() != M * K)
    type_error(env, "loraMatmul: X has " + std::to_string(X.ElementLength()) + " values, want M * cols = " + std::to_string(M * K));
  if ((int64_t)A.ElementLength() != r * K)
    type_error(env, "loraMatmul: A must be [r, cols] = " + std::to_string(r * K) + " values, has " + std::to_string(A.ElementLength()));
  if ((int64_t)B.ElementLength() != N * r)
    type_error(env, "loraMatmul: B must be [rows, r] = " + std::to_string(N * r) + " values, has " + std::to_string(B.ElementLength()));
  auto Y = Napi::Float32Array::New(env, (size_t)(M * N));
  auto H = Napi::Float32Array::New(env, (size_t)(M * r));
  guarded(env, [&] {
    if (fp32)
      be.gemm_nt((int)M, (int)N, (int)K, 1.0f, X.Data(), (int)K, Wf.Data(), (int)K, 0.0f, Y.Data(), (int)N);
    else
      be.nf4_gemm_nt((int)M, X.Data(), (int)K, W, 1.0f, 0.0f, Y.Data(), (int)N);
    be.lora_forward((int)M, (int)N, (int)K, (int)r, scale, X.Data(), A.Data(), B.Data(), H.Data(), Y.Data());
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("Y", Y);
  out.Set("H", H);
  return out;
}

}  // namespace

Napi::Object InitOps(Napi::Env env) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  ops.Set("nf4Quantize", Napi::Function::New(env, Nf4Quantize, "nf4Quantize"));
  ops.Set("nf4Dequantize", Napi::Function::New(env, Nf4Dequantize, "nf4Dequantize"));
  ops.Set("nf4Matmul", Napi::Function::New(env, Nf4Matmul, "nf4Matmul"));
  ops.Set("loraMatmul", Napi::Function::New(env, LoraMatmul, "loraMatmul"));
  return ops;
}

}  // namespace psb
