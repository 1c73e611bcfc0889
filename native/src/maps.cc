#include "maps.h"

#include "errors.h"
#include "framing.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ebbflow {
namespace {

bool is_per_cpu(enum bpf_map_type type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

int possible_cpus() { return std::max(libbpf_num_possible_cpus(), 1); }

void check_key(Napi::Env env, const bpf_map *map, const std::string &name, size_t got) {
  if (got != bpf_map__key_size(map))
    throw_native(env,
                 "map " + name + " has " + std::to_string(bpf_map__key_size(map)) + "-byte keys, got " +
                     std::to_string(got),
                 EINVAL);
}

}  // namespace

size_t map__value_bytes(const bpf_map *map) {
  size_t value_size = bpf_map__value_size(map);
  if (!is_per_cpu(bpf_map__type(map))) return value_size;
  return round8(value_size) * static_cast<size_t>(possible_cpus());
}

Napi::Object map__dump(Napi::Env env, const bpf_map *map, int fd, const std::string &name) {
  bool per_cpu = is_per_cpu(bpf_map__type(map));
  int cpus = per_cpu ? possible_cpus() : 1;
  size_t key_size = bpf_map__key_size(map);
  size_t value_size = bpf_map__value_size(map);
  size_t stride = map__value_bytes(map);
  std::vector<uint8_t> keys, values;
  size_t count = 0;

  // Batch lookup (5.6+, older than any kernel the objects load on): a few syscalls for the whole
  // map. A map type without batch operations (queue, stack, ring buffer) is an error: the
  // kernel then leaves the count as it was, so no fallback could tell an empty map from it.
  std::vector<uint8_t> token(std::max<size_t>(key_size, 8));
  bool first = true;
  __u32 chunk = 1024;
  for (;;) {
    keys.resize((count + chunk) * key_size);
    values.resize((count + chunk) * stride);
    __u32 n = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : token.data(), token.data(), keys.data() + count * key_size,
                                   values.data() + count * stride, &n, &opts);
    int e = err ? errno : 0;
    if (err && e == ENOSPC && n == 0 && chunk < (1u << 20)) {
      chunk *= 4;  // one hash bucket holds more entries than the chunk: ask for more
      continue;
    }
    if (err && e != ENOENT) throw_native(env, "reading map " + name, e);
    first = false;
    count += n;
    if (err) break;  // ENOENT: that was the last of them
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), count * key_size));
  out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), count * stride));
  out.Set("count", static_cast<double>(count));
  out.Set("keySize", static_cast<double>(key_size));
  out.Set("valueSize", static_cast<double>(value_size));
  out.Set("perCpu", per_cpu);
  out.Set("numCpus", static_cast<double>(cpus));
  return out;
}

Napi::Value map__lookup(Napi::Env env, const bpf_map *map, int fd, const std::string &name,
                        const Napi::Buffer<uint8_t> &key) {
  check_key(env, map, name, key.Length());
  std::vector<uint8_t> value(map__value_bytes(map));
  if (bpf_map_lookup_elem(fd, key.Data(), value.data()) != 0) {
    if (errno == ENOENT) return env.Null();
    throw_native(env, "looking up map " + name, errno);
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

void map__update(Napi::Env env, const bpf_map *map, int fd, const std::string &name, const Napi::Buffer<uint8_t> &key,
                 const Napi::Buffer<uint8_t> &value, uint64_t flags) {
  check_key(env, map, name, key.Length());
  if (value.Length() != map__value_bytes(map))
    throw_native(env,
                 "map " + name + " takes " + std::to_string(map__value_bytes(map)) + "-byte values, got " +
                     std::to_string(value.Length()),
                 EINVAL);
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), flags) != 0) throw_native(env, "updating map " + name, errno);
}

bool map__delete(Napi::Env env, const bpf_map *map, int fd, const std::string &name, const Napi::Buffer<uint8_t> &key) {
  check_key(env, map, name, key.Length());
  if (bpf_map_delete_elem(fd, key.Data()) != 0) {
    if (errno == ENOENT) return false;
    throw_native(env, "deleting from map " + name, errno);
  }
  return true;
}

}  // namespace ebbflow
