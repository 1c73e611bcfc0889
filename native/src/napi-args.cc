#include "napi-args.h"

#include "errors.h"

namespace ebbflow {

std::string arg_string(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsString()) throw_type(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> arg_buffer(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw_type(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

uint32_t opt_u32(const Napi::Object &opts, const char *key, uint32_t fallback, uint32_t min) {
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= min && d <= 0xffffffffu) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw_type(opts.Env(), std::string("option ") + key + " must be an integer >= " + std::to_string(min));
  return static_cast<uint32_t>(d);
}

}  // namespace ebbflow
