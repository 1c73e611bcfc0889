// Reading JavaScript arguments: a wrong type or an out-of-range option is a TypeError naming
// it, never quietly the default.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace ebbflow {

std::string arg_string(const Napi::CallbackInfo &info, size_t i, const char *what);

Napi::Buffer<uint8_t> arg_buffer(const Napi::CallbackInfo &info, size_t i, const char *what);

// An optional non-negative integer option: `fallback` when absent.
uint32_t opt_u32(const Napi::Object &opts, const char *key, uint32_t fallback, uint32_t min);

}  // namespace ebbflow
