#include "bpf-object.h"

#include "errors.h"
#include "log-capture.h"
#include "maps.h"
#include "napi-args.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

namespace ebbflow {

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceMethod<&BpfObject::SetGlobal>("setGlobal"),
                         InstanceMethod<&BpfObject::SetMaxEntries>("setMaxEntries"),
                         InstanceMethod<&BpfObject::SetAutocreate>("setAutocreate"),
                         InstanceMethod<&BpfObject::SetAutoload>("setAutoload"),
                         InstanceMethod<&BpfObject::Load>("load"),
                         InstanceMethod<&BpfObject::Programs>("programs"),
                         InstanceMethod<&BpfObject::Maps>("maps"),
                         InstanceMethod<&BpfObject::Attach>("attach"),
                         InstanceMethod<&BpfObject::OpenRingBuffer>("openRingBuffer"),
                         InstanceMethod<&BpfObject::MapDump>("mapDump"),
                         InstanceMethod<&BpfObject::MapLookup>("mapLookup"),
                         InstanceMethod<&BpfObject::MapUpdate>("mapUpdate"),
                         InstanceMethod<&BpfObject::MapDelete>("mapDelete"),
                         InstanceMethod<&BpfObject::Stats>("stats"),
                         InstanceMethod<&BpfObject::Close>("close"),
                     });
}

BpfObject::BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  path_ = arg_string(info, 0, "path");
  take_log();
  obj_ = bpf_object__open_file(path_.c_str(), nullptr);
  if (!obj_) {
    int err = errno;
    throw_native(env, "opening BPF object " + path_, err, take_log());
  }
}

void BpfObject::RequireOpen(Napi::Env env) {
  if (closed_) throw_native(env, "BPF object " + path_ + " is closed", EBADF);
}

void BpfObject::RequireLoaded(Napi::Env env, bool loaded) {
  RequireOpen(env);
  if (loaded_ != loaded)
    throw_native(env, "BPF object " + path_ + (loaded ? " is not loaded yet" : " is already loaded"), EINVAL);
}

bpf_map *BpfObject::FindMap(Napi::Env env, const std::string &name) {
  bpf_map *map = bpf_object__find_map_by_name(obj_, name.c_str());
  if (!map) throw_native(env, "no map " + name + " in " + path_, ENOENT);
  return map;
}

bpf_program *BpfObject::FindProgram(Napi::Env env, const std::string &name) {
  bpf_program *prog = bpf_object__find_program_by_name(obj_, name.c_str());
  if (!prog) throw_native(env, "no program " + name + " in " + path_, ENOENT);
  return prog;
}

int BpfObject::MapFd(Napi::Env env, bpf_map *map, const std::string &name) {
  int fd = bpf_map__fd(map);
  if (fd < 0) throw_native(env, "map " + name + " was not created (autocreate off?)", ENOENT);
  return fd;
}

// setGlobal(name, Buffer): a `const volatile` (.rodata) or .data/.bss global, before load.
Napi::Value BpfObject::SetGlobal(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, false);
  std::string name = arg_string(info, 0, "name");
  auto value = arg_buffer(info, 1, "value");
  const btf *btf = bpf_object__btf(obj_);
  if (!btf) throw_native(env, path_ + " has no BTF: cannot find global " + name, ENOENT);
  __u32 types = btf__type_cnt(btf);
  for (__u32 id = 1; id < types; id++) {
    const btf_type *sec = btf__type_by_id(btf, id);
    if (!btf_is_datasec(sec)) continue;
    std::string section = btf__name_by_offset(btf, sec->name_off);
    if (section.rfind(".rodata", 0) != 0 && section.rfind(".data", 0) != 0 && section.rfind(".bss", 0) != 0)
      continue;  // .kconfig and friends are libbpf's to fill
    const btf_var_secinfo *vars = btf_var_secinfos(sec);
    for (int i = 0; i < btf_vlen(sec); i++) {
      const btf_type *var = btf__type_by_id(btf, vars[i].type);
      if (!btf_is_var(var) || name != btf__name_by_offset(btf, var->name_off)) continue;
      if (vars[i].size != value.Length())
        throw_native(env,
                     "global " + name + " in " + section + " is " + std::to_string(vars[i].size) +
                         " bytes, the value given is " + std::to_string(value.Length()),
                     EINVAL);
      bpf_map *map = FindMap(env, section);
      size_t size = 0;
      // Before load, libbpf keeps the section's initial image in writable memory.
      auto *image = static_cast<uint8_t *>(const_cast<void *>(bpf_map__initial_value(map, &size)));
      if (!image || vars[i].offset + vars[i].size > size)
        throw_native(env, "cannot write global " + name + " in " + section, EINVAL);
      memcpy(image + vars[i].offset, value.Data(), value.Length());
      return env.Undefined();
    }
  }
  throw_native(env, "no global " + name + " in " + path_, ENOENT);
}

Napi::Value BpfObject::SetMaxEntries(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, false);
  std::string name = arg_string(info, 0, "map");
  double n = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  if (!(n >= 0 && n <= 0xffffffffu) || n != static_cast<double>(static_cast<uint32_t>(n)))
    throw_type(env, "n must be an integer from 0 to 2^32-1");
  int err = bpf_map__set_max_entries(FindMap(env, name), static_cast<uint32_t>(n));
  if (err) throw_native(env, "setting max_entries of map " + name, err);
  return env.Undefined();
}

Napi::Value BpfObject::SetAutocreate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, false);
  std::string name = arg_string(info, 0, "map");
  int err = bpf_map__set_autocreate(FindMap(env, name), info[1].ToBoolean().Value());
  if (err) throw_native(env, "setting autocreate of map " + name, err);
  return env.Undefined();
}

Napi::Value BpfObject::SetAutoload(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, false);
  std::string name = arg_string(info, 0, "prog");
  int err = bpf_program__set_autoload(FindProgram(env, name), info[1].ToBoolean().Value());
  if (err) throw_native(env, "setting autoload of program " + name, err);
  return env.Undefined();
}

Napi::Value BpfObject::Load(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, false);
  take_log();
  // The verifier gives up with EAGAIN whenever a signal is pending for the loading thread (it
  // checks as it goes), and libbpf's few retries meet the next one: a sampling profiler's
  // SIGPROF every millisecond or less (node --cpu-prof) failed every load. Signals wait until
  // the load returned; those a fault raises are never blocked.
  sigset_t block, old;
  sigfillset(&block);
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS}) sigdelset(&block, fault);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  int err = bpf_object__load(obj_);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (err) {
    std::string log = take_log();
    std::string hint = btf_hint();
    if (err == -EPERM) hint += (hint.empty() ? "" : "; ") + eperm_hint(Need::Load);
    throw_native(env, "loading BPF object " + path_, err, log, hint);
  }
  loaded_ = true;
  return env.Undefined();
}

Napi::Value BpfObject::Programs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  Napi::Array out = Napi::Array::New(env);
  bpf_program *prog;
  uint32_t i = 0;
  bpf_object__for_each_program(prog, obj_) out.Set(i++, Napi::String::New(env, bpf_program__name(prog)));
  return out;
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireOpen(env);
  Napi::Array out = Napi::Array::New(env);
  bpf_map *map;
  uint32_t i = 0;
  bpf_object__for_each_map(map, obj_) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("name", bpf_map__name(map));
    m.Set("type", static_cast<double>(bpf_map__type(map)));
    m.Set("keySize", static_cast<double>(bpf_map__key_size(map)));
    m.Set("valueSize", static_cast<double>(bpf_map__value_size(map)));
    m.Set("maxEntries", static_cast<double>(bpf_map__max_entries(map)));
    out.Set(i++, m);
  }
  return out;
}

// attach(prog, { cgroupPath? }): tracepoint, raw_tp and tp_btf programs by their section; cgroup
// programs to the cgroup v2 directory given, as a cgroup link (5.7+, older than any kernel the
// objects load on): it runs alongside other programs, as BPF_F_ALLOW_MULTI would, and detaches
// when destroyed or when this process dies.
Napi::Value BpfObject::Attach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, true);
  std::string name = arg_string(info, 0, "prog");
  bpf_program *prog = FindProgram(env, name);
  std::string cgroup;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object opts = info[1].As<Napi::Object>();
    Napi::Value v = opts.Get("cgroupPath");
    if (v.IsString()) cgroup = v.As<Napi::String>().Utf8Value();
    else if (!v.IsUndefined() && !v.IsNull()) throw_type(env, "cgroupPath must be a string");
  }
  if (bpf_program__fd(prog) < 0) throw_native(env, "program " + name + " was not loaded (autoload off?)", ENOENT);
  enum bpf_prog_type type = bpf_program__type(prog);
  bool is_cgroup = type == BPF_PROG_TYPE_CGROUP_SKB || type == BPF_PROG_TYPE_CGROUP_SOCK ||
                   type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR || type == BPF_PROG_TYPE_CGROUP_SOCKOPT ||
                   type == BPF_PROG_TYPE_CGROUP_SYSCTL || type == BPF_PROG_TYPE_CGROUP_DEVICE;
  if (is_cgroup && cgroup.empty())
    throw_native(env, "attaching program " + name + ": a cgroup program needs opts.cgroupPath", EINVAL);
  take_log();
  if (cgroup.empty()) {
    bpf_link *link = bpf_program__attach(prog);
    if (!link) {
      int err = errno;
      throw_native(env, "attaching program " + name + " (section " + bpf_program__section_name(prog) + ")", err,
                   take_log(), err == EPERM ? eperm_hint(Need::Attach) : "");
    }
    links_.push_back(link);
    return env.Undefined();
  }

  int fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_native(env, "opening cgroup " + cgroup + " to attach program " + name, errno);
  bpf_link *link = bpf_program__attach_cgroup(prog, fd);
  int err = link ? 0 : errno;
  close(fd);  // the link holds the cgroup
  if (!link)
    throw_native(env, "attaching program " + name + " to cgroup " + cgroup, err, take_log(),
                 err == EPERM ? eperm_hint(Need::Cgroup) : "");
  links_.push_back(link);
  return env.Undefined();
}

// openRingBuffer(map, { batchBytes?, flushMs? }, onBatch): starts the map's drain thread.
Napi::Value BpfObject::OpenRingBuffer(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, true);
  std::string name = arg_string(info, 0, "map");
  if (info.Length() < 3 || !info[2].IsFunction()) throw_type(env, "onBatch must be a function");
  Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  Napi::Function callback = info[2].As<Napi::Function>();
  bpf_map *map = FindMap(env, name);
  if (bpf_map__type(map) != BPF_MAP_TYPE_RINGBUF) throw_native(env, "map " + name + " is not a ring buffer", EINVAL);
  int fd = MapFd(env, map, name);
  for (auto &d : drains_)
    if (d->map_name == name) throw_native(env, "map " + name + " already has a drain", EBUSY);

  auto drain = std::make_shared<Drain>();
  drain->map_name = name;
  drain->framer.batch_bytes = opt_u32(opts, "batchBytes", kDefaultBatchBytes, 1);
  drain->flush_ms = opt_u32(opts, "flushMs", kDefaultFlushMs, 0);
  take_log();
  drain->rb = ring_buffer__new(fd, Drain::on_ring_sample, drain.get(), nullptr);
  if (!drain->rb) throw_native(env, "opening ring buffer " + name, errno, take_log());
  try {
    Drain::start(env, drain, callback);
  } catch (...) {
    drain->free_buffers();  // until the thread runs, a failure here must free the buffer itself
    throw;
  }
  drains_.push_back(std::move(drain));
  return env.Undefined();
}

// mapDump(name): every entry. Per-CPU values come as the kernel lays them out: the value
// size rounded up to 8, once per possible CPU.
Napi::Value BpfObject::MapDump(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, true);
  std::string name = arg_string(info, 0, "map");
  bpf_map *map = FindMap(env, name);
  return map__dump(env, map, MapFd(env, map, name), name);
}

Napi::Value BpfObject::MapLookup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, true);
  std::string name = arg_string(info, 0, "map");
  bpf_map *map = FindMap(env, name);
  auto key = arg_buffer(info, 1, "key");
  return map__lookup(env, map, MapFd(env, map, name), name, key);
}

Napi::Value BpfObject::MapUpdate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, true);
  std::string name = arg_string(info, 0, "map");
  bpf_map *map = FindMap(env, name);
  auto key = arg_buffer(info, 1, "key");
  auto value = arg_buffer(info, 2, "value");
  uint64_t flags = BPF_ANY;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsNumber()) throw_type(env, "flags must be a number");
    flags = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  }
  map__update(env, map, MapFd(env, map, name), name, key, value, flags);
  return env.Undefined();
}

Napi::Value BpfObject::MapDelete(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  RequireLoaded(env, true);
  std::string name = arg_string(info, 0, "map");
  bpf_map *map = FindMap(env, name);
  auto key = arg_buffer(info, 1, "key");
  return Napi::Boolean::New(env, map__delete(env, map, MapFd(env, map, name), name, key));
}

Napi::Value BpfObject::Stats(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint64_t batches = closed_batches_, records = closed_records_, bytes = closed_bytes_, lost = closed_lost_;
  for (auto &d : drains_) {
    batches += d->n_batches.load();
    records += d->n_records.load();
    bytes += d->n_bytes.load();
    lost += d->n_lost.load();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("batches", static_cast<double>(batches));
  out.Set("records", static_cast<double>(records));
  out.Set("bytes", static_cast<double>(bytes));
  out.Set("lost", static_cast<double>(lost));
  return out;
}

// close(): synchronous and idempotent. Detaches the programs, lets each drain thread hand
// over what the kernel buffer still holds, delivers those batches to onBatch (so onBatch may
// run inside close()), joins the threads and closes the object. An onBatch that throws here
// does not stop the teardown; the first such error is rethrown at the end.
Napi::Value BpfObject::Close(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (closed_) return env.Undefined();
  std::optional<Napi::Error> first_error;
  Teardown(&first_error);
  if (first_error) throw *first_error;
  return env.Undefined();
}


void BpfObject::Teardown(std::optional<Napi::Error> *errors) {
  if (closed_) return;
  closed_ = true;  // a close() from inside onBatch below returns at once
  // Detach first: after this no new records arrive, so the threads' last drain ends.
  for (bpf_link *link : links_) bpf_link__destroy(link);
  links_.clear();
  for (auto &d : drains_) d->stop.store(true, std::memory_order_release);
  for (auto &d : drains_) {
    if (d->torn_down) continue;
    if (errors) d->finish(Napi::Env(env_), errors);
    else d->abandon_and_join();
    d->release(env_);
  }
  for (auto &d : drains_) {
    closed_batches_ += d->n_batches.load();
    closed_records_ += d->n_records.load();
    closed_bytes_ += d->n_bytes.load();
    closed_lost_ += d->n_lost.load();
    if (d->thread.joinable()) d->thread.join();  // torn down by the env hook: already joined
    d->free_buffers();
  }
  drains_.clear();
  if (obj_) bpf_object__close(obj_);
  obj_ = nullptr;
}

}  // namespace ebbflow
