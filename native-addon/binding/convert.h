// Argument checks and conversions between JavaScript values and core types.
// Every check throws a JS TypeError/RangeError that names the argument, so a
// wrong call from TypeScript fails with a message, never a crash.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

namespace psb {

[[noreturn]] inline void type_error(Napi::Env env, const std::string& what) {
  throw Napi::TypeError::New(env, "peft-studio native: " + what);
}

inline Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsObject()) type_error(info.Env(), std::string(name) + " must be an object");
  return info[i].As<Napi::Object>();
}

inline double number_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) type_error(o.Env(), std::string("field '") + key + "' must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int int_field(Napi::Object o, const char* key) {
  double d = number_field(o, key);
  if (d != static_cast<double>(static_cast<long long>(d)) || d < -2147483648.0 || d > 2147483647.0)
    type_error(o.Env(), std::string("field '") + key + "' must be an integer");
  return static_cast<int>(d);
}

inline bool bool_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) type_error(o.Env(), std::string("field '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// Absent (undefined) reads as false; anything else but a boolean is a type error.
inline bool optional_bool_field(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) type_error(env, std::string("field '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline std::string string_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) type_error(o.Env(), std::string("field '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline Napi::Object object_field(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) type_error(o.Env(), std::string("field '") + key + "' must be an object");
  return v.As<Napi::Object>();
}

inline Napi::Float32Array float32_value(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(env, name + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

inline Napi::Int32Array int32_value(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    type_error(env, name + " must be an Int32Array");
  return v.As<Napi::Int32Array>();
}

inline std::vector<int64_t> shape_value(Napi::Env env, Napi::Value v, const std::string& name) {
  if (!v.IsArray()) type_error(env, name + " must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber() || e.As<Napi::Number>().DoubleValue() < 0)
      type_error(env, name + " must be an array of non-negative integers");
    out.push_back(static_cast<int64_t>(e.As<Napi::Number>().DoubleValue()));
  }
  return out;
}

inline Napi::Array shape_to_js(Napi::Env env, const std::vector<int64_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

}  // namespace psb
