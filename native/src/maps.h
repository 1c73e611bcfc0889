// Map access from JavaScript: a whole map at once (counter maps read on an interval), one
// entry by key, and the checks that keep a wrong key or value size a clear error.
#pragma once

#include <napi.h>

#include <bpf/libbpf.h>

#include <string>

namespace ebbflow {

// Bytes of one value as the kernel reads and writes it: per-CPU maps hold the value size
// rounded up to 8, once per possible CPU.
size_t map__value_bytes(const bpf_map *map);

// { keys, values, count, keySize, valueSize, perCpu, numCpus }: every entry of the map.
Napi::Object map__dump(Napi::Env env, const bpf_map *map, int fd, const std::string &name);

// The value Buffer, or null when the key is absent.
Napi::Value map__lookup(Napi::Env env, const bpf_map *map, int fd, const std::string &name,
                        const Napi::Buffer<uint8_t> &key);

void map__update(Napi::Env env, const bpf_map *map, int fd, const std::string &name, const Napi::Buffer<uint8_t> &key,
                 const Napi::Buffer<uint8_t> &value, uint64_t flags);

// False when the key was absent.
bool map__delete(Napi::Env env, const bpf_map *map, int fd, const std::string &name, const Napi::Buffer<uint8_t> &key);

}  // namespace ebbflow
