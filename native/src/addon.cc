// libbpf behind Node-API.
//
// A BpfObject follows libbpf's order: open -> set globals / map sizes -> load -> attach ->
// open ring (or perf) buffers. Each buffer is drained by its own thread, which does not decode
// records: it frames each one as [u32 size][bytes][zero pad to 8] into a batch and hands whole
// batches to JavaScript through a thread-safe function, never one call per record.
//
// Backpressure: the hand-off queue is bounded and the drain thread blocks on it, so a slow
// JavaScript side makes the kernel buffer fill up, where the BPF programs count what they
// cannot reserve. Memory stays bounded and every loss is counted.
//
// Teardown without deadlock: close() only asks the threads to stop and returns a promise. Each
// thread flushes its last batch, releases its thread-safe function, and the finalizer (on the
// JavaScript thread, after every queued batch has been delivered) joins it; the last one to
// finish detaches the programs, closes the object and resolves the promise.

#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <string>
#include <sys/utsname.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

// ---- libbpf log capture: the verifier's words go into the error JavaScript sees ----------

constexpr size_t kLogKeep = 16 * 1024;
std::mutex g_log_mutex;
std::string g_log;

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[4096];
  int n = vsnprintf(line, sizeof(line), fmt, args);
  if (n <= 0) return n;
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_log.append(line, std::min<size_t>(n, sizeof(line) - 1));
  if (g_log.size() > 4 * kLogKeep) g_log.erase(0, g_log.size() - kLogKeep);
  return n;
}

std::string take_log() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string out = g_log.size() > kLogKeep ? g_log.substr(g_log.size() - kLogKeep) : g_log;
  g_log.clear();
  return out;
}

const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENOTSUP: return "ENOTSUP";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case ENOSPC: return "ENOSPC";
    case 524: return "ENOTSUPP";  // kernel-internal "not supported", leaks out of bpf()
    default: return "EUNKNOWN";
  }
}

// Throws an Error with `code`, `errno` and `libbpfLog`, the shape the TypeScript NativeError
// wraps. The message names the missing privilege for EPERM, the usual cause.
[[noreturn]] void throw_native(Napi::Env env, const std::string &what, int err,
                               const std::string &log = "") {
  err = err < 0 ? -err : err;
  std::string message = what + ": " + strerror(err);
  if (err == EPERM || err == EACCES)
    message += " (loading BPF needs root, or CAP_BPF and CAP_PERFMON; attaching cgroup programs "
               "also CAP_NET_ADMIN)";
  if (!log.empty()) message += "\n" + log;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, errno_name(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("libbpfLog", Napi::String::New(env, log));
  throw error;
}

bool is_per_cpu(enum bpf_map_type type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- drain threads ----------------------------------------------------------------------

struct Batch {
  std::vector<uint8_t> data;
  uint32_t records = 0;
  uint64_t lost = 0;
};

class BpfObject;

struct Drain {
  BpfObject *owner = nullptr;
  bool perf = false;
  ring_buffer *rb = nullptr;
  perf_buffer *pb = nullptr;
  size_t batch_bytes = 256 * 1024;
  uint64_t flush_ms = 50;
  std::atomic<bool> stop{false};
  std::thread thread;
  Napi::ThreadSafeFunction tsfn;
  // Touched only by the drain thread.
  std::unique_ptr<Batch> batch;
  uint64_t batch_started_ms = 0;
  uint64_t pending_lost = 0;
  int poll_error = 0;
  // Read from JavaScript through stats().
  std::atomic<uint64_t> batches{0}, records{0}, bytes{0}, lost{0};

  void append(const void *data, uint32_t size) {
    if (!batch) {
      batch = std::make_unique<Batch>();
      batch->data.reserve(batch_bytes + 64);
      batch_started_ms = now_ms();
    }
    auto &buf = batch->data;
    size_t at = buf.size();
    size_t padded = (size + 7u) & ~size_t(7);
    buf.resize(at + 4 + padded);
    memcpy(buf.data() + at, &size, 4);
    memcpy(buf.data() + at + 4, data, size);
    if (padded > size) memset(buf.data() + at + 4 + size, 0, padded - size);
    batch->records++;
    records.fetch_add(1, std::memory_order_relaxed);
    if (buf.size() >= batch_bytes) flush();
  }

  // Hands the current batch (and any perf-buffer losses) to JavaScript. Blocks while the
  // queue is full: that is the backpressure described at the top of this file.
  void flush() {
    if (!batch && pending_lost == 0) return;
    if (!batch) batch = std::make_unique<Batch>();
    batch->lost = pending_lost;
    pending_lost = 0;
    bytes.fetch_add(batch->data.size(), std::memory_order_relaxed);
    batches.fetch_add(1, std::memory_order_relaxed);
    Batch *handed = batch.release();
    napi_status status = tsfn.BlockingCall(handed, deliver);
    if (status != napi_ok) delete handed;  // only when the environment is shutting down
  }

  static void deliver(Napi::Env env, Napi::Function callback, Batch *batch) {
    if (env == nullptr || callback.IsEmpty()) {
      delete batch;
      return;
    }
    uint32_t records = batch->records;
    double lost = static_cast<double>(batch->lost);
    // Zero copy: the Buffer owns the batch's memory and frees it when collected.
    Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::NewOrCopy(
        env, batch->data.data(), batch->data.size(),
        [](Napi::Env, uint8_t *, Batch *b) { delete b; }, batch);
    callback.Call({buffer, Napi::Number::New(env, records), Napi::Number::New(env, lost)});
  }

  void run() {
    while (!stop.load(std::memory_order_acquire)) {
      int timeout = static_cast<int>(flush_ms);
      int err = perf ? perf_buffer__poll(pb, timeout) : ring_buffer__poll(rb, timeout);
      if (err < 0 && err != -EINTR) {
        poll_error = -err;
        break;
      }
      if (batch && now_ms() - batch_started_ms >= flush_ms) flush();
      else if (!batch && pending_lost > 0) flush();
    }
    // What the kernel still holds goes out before the thread ends.
    if (perf) perf_buffer__consume(pb);
    else ring_buffer__consume(rb);
    flush();
    tsfn.Release();
  }

  static int on_ring_sample(void *ctx, void *data, size_t size) {
    static_cast<Drain *>(ctx)->append(data, static_cast<uint32_t>(size));
    return 0;
  }

  static void on_perf_sample(void *ctx, int, void *data, __u32 size) {
    static_cast<Drain *>(ctx)->append(data, size);
  }

  static void on_perf_lost(void *ctx, int, __u64 count) {
    auto *drain = static_cast<Drain *>(ctx);
    drain->pending_lost += count;
    drain->lost.fetch_add(count, std::memory_order_relaxed);
  }
};

// ---- BpfObject --------------------------------------------------------------------------

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::FunctionReference *constructor;

  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(
        env, "BpfObject",
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
            InstanceMethod<&BpfObject::OpenPerfBuffer>("openPerfBuffer"),
            InstanceMethod<&BpfObject::MapDump>("mapDump"),
            InstanceMethod<&BpfObject::MapLookup>("mapLookup"),
            InstanceMethod<&BpfObject::MapUpdate>("mapUpdate"),
            InstanceMethod<&BpfObject::MapDelete>("mapDelete"),
            InstanceMethod<&BpfObject::Stats>("stats"),
            InstanceMethod<&BpfObject::Close>("close"),
        });
    constructor = new Napi::FunctionReference(Napi::Persistent(fn));
    exports.Set("BpfObject", fn);
    return exports;
  }

  // new BpfObject(path): bpf_object__open_file.
  explicit BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info) {
    Napi::Env env = info.Env();
    path_ = info[0].As<Napi::String>().Utf8Value();
    take_log();
    obj_ = bpf_object__open_file(path_.c_str(), nullptr);
    int err = libbpf_get_error(obj_);
    if (err || !obj_) {
      obj_ = nullptr;
      throw_native(env, "opening BPF object " + path_, err ? err : errno, take_log());
    }
  }

  ~BpfObject() override {
    // Reached only when JavaScript dropped the object without close(): no drain is running
    // then (an open drain's thread-safe function keeps this object referenced).
    StopAll();
    FreeAll();
  }

 private:
  std::string path_;
  bpf_object *obj_ = nullptr;
  bool loaded_ = false;
  bool closing_ = false;
  std::vector<bpf_link *> links_;
  std::vector<std::unique_ptr<Drain>> drains_;
  size_t drains_running_ = 0;
  uint64_t closed_batches_ = 0, closed_records_ = 0, closed_bytes_ = 0, closed_lost_ = 0;
  std::unique_ptr<Napi::Promise::Deferred> close_deferred_;
  Napi::ObjectReference self_ref_;

  void RequireOpen(Napi::Env env) {
    if (!obj_ || closing_) throw_native(env, "BPF object " + path_ + " is closed", EBADF);
  }

  void RequireLoaded(Napi::Env env, bool loaded) {
    RequireOpen(env);
    if (loaded_ != loaded)
      throw_native(env, std::string("BPF object ") + path_ + (loaded ? " is not loaded yet" : " is already loaded"),
                   EINVAL);
  }

  bpf_map *FindMap(Napi::Env env, const std::string &name) {
    bpf_map *map = bpf_object__find_map_by_name(obj_, name.c_str());
    if (!map) throw_native(env, "no map " + name + " in " + path_, ENOENT);
    return map;
  }

  bpf_program *FindProgram(Napi::Env env, const std::string &name) {
    bpf_program *prog = bpf_object__find_program_by_name(obj_, name.c_str());
    if (!prog) throw_native(env, "no program " + name + " in " + path_, ENOENT);
    return prog;
  }

  // setGlobal(name, Buffer): a `const volatile` (or .data/.bss) global, before load.
  Napi::Value SetGlobal(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    auto value = info[1].As<Napi::Buffer<uint8_t>>();
    const btf *btf = bpf_object__btf(obj_);
    if (!btf) throw_native(env, path_ + " has no BTF: cannot find global " + name, ENOENT);
    for (const char *section : {".rodata", ".data", ".bss"}) {
      int sec_id = btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC);
      if (sec_id < 0) continue;
      const btf_type *sec = btf__type_by_id(btf, sec_id);
      const btf_var_secinfo *vars = btf_var_secinfos(sec);
      for (int i = 0; i < btf_vlen(sec); i++) {
        const btf_type *var = btf__type_by_id(btf, vars[i].type);
        if (name != btf__name_by_offset(btf, var->name_off)) continue;
        if (vars[i].size != value.Length())
          throw_native(env, "global " + name + " is " + std::to_string(vars[i].size) + " bytes, got " +
                                std::to_string(value.Length()),
                       EINVAL);
        bpf_map *map = FindMap(env, section);
        size_t size = 0;
        // Before load, libbpf keeps the section's initial image in writable memory.
        auto *image = const_cast<uint8_t *>(static_cast<const uint8_t *>(bpf_map__initial_value(map, &size)));
        if (!image || vars[i].offset + vars[i].size > size)
          throw_native(env, "cannot write global " + name, EINVAL);
        memcpy(image + vars[i].offset, value.Data(), value.Length());
        return env.Undefined();
      }
    }
    throw_native(env, "no global " + name + " in " + path_, ENOENT);
  }

  Napi::Value SetMaxEntries(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    int err = bpf_map__set_max_entries(FindMap(env, name), info[1].As<Napi::Number>().Uint32Value());
    if (err) throw_native(env, "sizing map " + name, err);
    return env.Undefined();
  }

  Napi::Value SetAutocreate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    int err = bpf_map__set_autocreate(FindMap(env, name), info[1].As<Napi::Boolean>().Value());
    if (err) throw_native(env, "setting autocreate of map " + name, err);
    return env.Undefined();
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    int err = bpf_program__set_autoload(FindProgram(env, name), info[1].As<Napi::Boolean>().Value());
    if (err) throw_native(env, "setting autoload of program " + name, err);
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    take_log();
    int err = bpf_object__load(obj_);
    if (err) throw_native(env, "loading BPF object " + path_ + " (the kernel refused it)", err, take_log());
    loaded_ = true;
    return env.Undefined();
  }

  Napi::Value Programs(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    Napi::Array out = Napi::Array::New(env);
    bpf_program *prog;
    uint32_t i = 0;
    bpf_object__for_each_program(prog, obj_) out.Set(i++, Napi::String::New(env, bpf_program__name(prog)));
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo &info) {
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

  // attach(prog, { cgroupPath? }): tracepoints by their section; cgroup programs to a cgroup.
  Napi::Value Attach(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_program *prog = FindProgram(env, name);
    std::string cgroup;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Value v = info[1].As<Napi::Object>().Get("cgroupPath");
      if (v.IsString()) cgroup = v.As<Napi::String>().Utf8Value();
    }
    take_log();
    bpf_link *link;
    if (!cgroup.empty()) {
      int fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) throw_native(env, "opening cgroup " + cgroup + " for program " + name, errno);
      // A cgroup link attaches alongside other programs (as BPF_F_ALLOW_MULTI would) and
      // detaches when destroyed, even if this process dies.
      link = bpf_program__attach_cgroup(prog, fd);
      int err = libbpf_get_error(link);
      close(fd);
      if (err) throw_native(env, "attaching program " + name + " to cgroup " + cgroup, err, take_log());
    } else {
      link = bpf_program__attach(prog);
      int err = libbpf_get_error(link);
      if (err) throw_native(env, "attaching program " + name, err, take_log());
    }
    links_.push_back(link);
    return env.Undefined();
  }

  static uint32_t OptU32(const Napi::Object &opts, const char *key, uint32_t fallback) {
    Napi::Value v = opts.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
  }

  Napi::Value OpenBuffer(const Napi::CallbackInfo &info, bool perf) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    Napi::Function callback = info[2].As<Napi::Function>();
    int fd = bpf_map__fd(FindMap(env, name));
    if (fd < 0) throw_native(env, "map " + name + " was not created", ENOENT);

    auto drain = std::make_unique<Drain>();
    drain->owner = this;
    drain->perf = perf;
    drain->batch_bytes = OptU32(opts, "batchBytes", 256 * 1024);
    drain->flush_ms = OptU32(opts, "flushMs", 50);
    take_log();
    if (perf) {
      perf_buffer_opts pb_opts = {};
      pb_opts.sz = sizeof(pb_opts);
      drain->pb = perf_buffer__new(fd, OptU32(opts, "pageCount", 64), Drain::on_perf_sample,
                                   Drain::on_perf_lost, drain.get(), &pb_opts);
      int err = libbpf_get_error(drain->pb);
      if (err) {
        drain->pb = nullptr;
        throw_native(env, "opening perf buffer " + name, err, take_log());
      }
    } else {
      drain->rb = ring_buffer__new(fd, Drain::on_ring_sample, drain.get(), nullptr);
      int err = libbpf_get_error(drain->rb);
      if (err) {
        drain->rb = nullptr;
        throw_native(env, "opening ring buffer " + name, err, take_log());
      }
    }
    // At most 64 batches wait for JavaScript; then the drain thread blocks (backpressure).
    drain->tsfn = Napi::ThreadSafeFunction::New(
        env, callback, "ebbflow-drain", 64, 1, this, [](Napi::Env, BpfObject *self) { self->OnDrainFinished(); });
    if (self_ref_.IsEmpty()) self_ref_ = Napi::Persistent(Value());
    Drain *raw = drain.get();
    drains_.push_back(std::move(drain));
    drains_running_++;
    raw->thread = std::thread([raw] { raw->run(); });
    return env.Undefined();
  }

  Napi::Value OpenRingBuffer(const Napi::CallbackInfo &info) { return OpenBuffer(info, false); }
  Napi::Value OpenPerfBuffer(const Napi::CallbackInfo &info) { return OpenBuffer(info, true); }

  // mapDump(name): every entry. Per-CPU values come as the kernel lays them out: the value
  // size rounded up to 8, once per possible CPU.
  Napi::Value MapDump(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_map *map = FindMap(env, name);
    int fd = bpf_map__fd(map);
    bool per_cpu = is_per_cpu(bpf_map__type(map));
    int cpus = per_cpu ? libbpf_num_possible_cpus() : 1;
    size_t key_size = bpf_map__key_size(map);
    size_t value_size = bpf_map__value_size(map);
    size_t stride = per_cpu ? ((value_size + 7) & ~size_t(7)) * cpus : value_size;
    size_t max = bpf_map__max_entries(map);
    std::vector<uint8_t> keys(max * key_size), values(max * stride);
    size_t count = 0;

    // Batch lookup (5.6+): one syscall for the whole map; iteration otherwise.
    bool batched = false;
    if (bpf_map__type(map) != BPF_MAP_TYPE_ARRAY && bpf_map__type(map) != BPF_MAP_TYPE_PERCPU_ARRAY) {
      std::vector<uint8_t> token(std::max<size_t>(key_size, 8));
      bool first = true;
      batched = true;
      while (count < max) {
        __u32 n = static_cast<__u32>(max - count);
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        int err = bpf_map_lookup_batch(fd, first ? nullptr : token.data(), token.data(),
                                       keys.data() + count * key_size, values.data() + count * stride, &n, &opts);
        first = false;
        if (err && errno != ENOENT) {
          if (count == 0 && (errno == EINVAL || errno == ENOTSUP || errno == 524)) {
            batched = false;  // the kernel has no batch ops for this map: iterate
            break;
          }
          throw_native(env, "reading map " + name, errno);
        }
        count += n;
        if (err) break;  // ENOENT: no more entries
      }
      if (!batched) count = 0;
    }
    if (!batched) {
      std::vector<uint8_t> key(key_size), next(key_size);
      bool have = false;
      while (count < max && bpf_map_get_next_key(fd, have ? key.data() : nullptr, next.data()) == 0) {
        memcpy(key.data(), next.data(), key_size);
        have = true;
        if (bpf_map_lookup_elem(fd, key.data(), values.data() + count * stride) != 0) continue;  // deleted meanwhile
        memcpy(keys.data() + count * key_size, key.data(), key_size);
        count++;
      }
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

  size_t ValueBytes(bpf_map *map) {
    size_t value_size = bpf_map__value_size(map);
    if (!is_per_cpu(bpf_map__type(map))) return value_size;
    return ((value_size + 7) & ~size_t(7)) * libbpf_num_possible_cpus();
  }

  Napi::Value MapLookup(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_map *map = FindMap(env, name);
    auto key = info[1].As<Napi::Buffer<uint8_t>>();
    if (key.Length() != bpf_map__key_size(map)) throw_native(env, "key size of map " + name, EINVAL);
    std::vector<uint8_t> value(ValueBytes(map));
    if (bpf_map_lookup_elem(bpf_map__fd(map), key.Data(), value.data()) != 0) {
      if (errno == ENOENT) return env.Null();
      throw_native(env, "looking up map " + name, errno);
    }
    return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
  }

  Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_map *map = FindMap(env, name);
    auto key = info[1].As<Napi::Buffer<uint8_t>>();
    auto value = info[2].As<Napi::Buffer<uint8_t>>();
    uint64_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : static_cast<int64_t>(BPF_ANY);
    if (key.Length() != bpf_map__key_size(map) || value.Length() != ValueBytes(map))
      throw_native(env, "key or value size of map " + name, EINVAL);
    if (bpf_map_update_elem(bpf_map__fd(map), key.Data(), value.Data(), flags) != 0)
      throw_native(env, "updating map " + name, errno);
    return env.Undefined();
  }

  Napi::Value MapDelete(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_map *map = FindMap(env, name);
    auto key = info[1].As<Napi::Buffer<uint8_t>>();
    if (key.Length() != bpf_map__key_size(map)) throw_native(env, "key size of map " + name, EINVAL);
    if (bpf_map_delete_elem(bpf_map__fd(map), key.Data()) != 0) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      throw_native(env, "deleting from map " + name, errno);
    }
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint64_t batches = closed_batches_, records = closed_records_, bytes = closed_bytes_, lost = closed_lost_;
    for (auto &d : drains_) {
      batches += d->batches.load();
      records += d->records.load();
      bytes += d->bytes.load();
      lost += d->lost.load();
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("batches", static_cast<double>(batches));
    out.Set("records", static_cast<double>(records));
    out.Set("bytes", static_cast<double>(bytes));
    out.Set("lost", static_cast<double>(lost));
    return out;
  }

  // close(): Promise<void>, resolved once every batch has been delivered and all is detached.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (close_deferred_) return close_deferred_->Promise();
    close_deferred_ = std::make_unique<Napi::Promise::Deferred>(env);
    closing_ = true;
    if (drains_running_ == 0) {
      FreeAll();
      close_deferred_->Resolve(env.Undefined());
    } else {
      for (auto &d : drains_) d->stop.store(true, std::memory_order_release);
    }
    return close_deferred_->Promise();
  }

  // A drain's thread-safe function finalizer: runs on the JavaScript thread after the last
  // batch of that drain was delivered.
  void OnDrainFinished() {
    Napi::Env env = Env();
    if (--drains_running_ > 0) return;
    for (auto &d : drains_) d->stop.store(true);
    FreeAll();
    if (!self_ref_.IsEmpty()) self_ref_.Reset();
    if (close_deferred_) {
      Napi::HandleScope scope(env);
      close_deferred_->Resolve(env.Undefined());
    }
  }

  void StopAll() {
    for (auto &d : drains_) d->stop.store(true);
  }

  void FreeAll() {
    for (auto &d : drains_) {
      if (d->thread.joinable()) d->thread.join();
      closed_batches_ += d->batches.load();
      closed_records_ += d->records.load();
      closed_bytes_ += d->bytes.load();
      closed_lost_ += d->lost.load();
      if (d->rb) ring_buffer__free(d->rb);
      if (d->pb) perf_buffer__free(d->pb);
      d->rb = nullptr;
      d->pb = nullptr;
    }
    drains_.clear();
    for (bpf_link *link : links_) bpf_link__destroy(link);
    links_.clear();
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }
};

Napi::FunctionReference *BpfObject::constructor = nullptr;

// ---- module functions -------------------------------------------------------------------

Napi::Value ProbeFeatures(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ringbuf", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1);
  out.Set("perfbuf", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERF_EVENT_ARRAY, nullptr) == 1);
  out.Set("cgroupSkb", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nullptr) == 1);
  out.Set("btf", access("/sys/kernel/btf/vmlinux", R_OK) == 0);
  out.Set("numPossibleCpus", static_cast<double>(libbpf_num_possible_cpus()));
  utsname u{};
  uname(&u);
  out.Set("kernelRelease", u.release);
  return out;
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

// CLOCK_BOOTTIME in ns, the clock of every record's timestamp (bpf_ktime_get_boot_ns).
Napi::Value BootTimeNs(const Napi::CallbackInfo &info) {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(libbpf_print);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  BpfObject::Init(env, exports);
  exports.Set("probeFeatures", Napi::Function::New(env, ProbeFeatures));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("bootTimeNs", Napi::Function::New(env, BootTimeNs));
  return exports;
}

}  // namespace

NODE_API_MODULE(ebbflow_native, Init)
