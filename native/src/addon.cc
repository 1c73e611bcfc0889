// libbpf behind Node-API.
//
// A BpfObject follows libbpf's order: open -> set globals / map sizes -> load -> attach ->
// open ring (or perf) buffers -> close. Each buffer is drained by a thread of its own, which
// does not decode records: it frames each one into a batch and hands whole batches to
// JavaScript, one call per batch, never one per record.
//
// Batch layout, little-endian: per record a u32 size, the record's bytes, then zeros up to the
// next multiple of 8 of the record's size, so the next frame starts at
// offset + 4 + round_up(size, 8). (Perf-buffer records may also carry up to 7 bytes of the
// kernel's own trailing padding inside `size`: records carry their own length.)
//
// Hand-off and backpressure: each drain has a queue of at most kMaxPending batches. A drain
// thread that finds it full blocks; while it blocks it takes nothing from the kernel buffer,
// which fills up, and the BPF side counts what it cannot reserve. Memory stays bounded and
// every loss is counted. A thread-safe function (napi_threadsafe_function) only wakes the
// JavaScript thread, which then empties the queue; at most one wake per drain is outstanding.
// The queue is ours rather than the thread-safe function's so that close() can run
// synchronously on the JavaScript thread: it delivers what the threads still hand over while
// it waits for them, where a thread blocked in a thread-safe function's own full queue would
// wait for the very thread that is joining it.
//
// Memory: a full batch's block is handed to JavaScript as is (an external Buffer that frees
// it, no copy). A batch cut short by flushMs and using under a quarter of its block is copied
// once, on the drain thread, into a block of its exact size, and the large block is reused:
// V8 accounts external memory by a Buffer's length, so handing it a mostly empty 256 KiB block
// would hide real memory from the garbage collector.
//
// Event loop: an open buffer's thread-safe function stays referenced, so a process with open
// buffers stays alive (like an open socket) until close() releases it. A BpfObject dropped
// without close() is closed by its finalizer (batches still queued are then dropped, as no
// JavaScript may run there); at process exit an environment cleanup hook stops the threads
// before Node frees the thread-safe functions they use.

#include <napi.h>

#include "framing.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <string>
#include <sys/utsname.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr size_t kDefaultBatchBytes = 256 * 1024;
constexpr uint32_t kDefaultFlushMs = 50;
constexpr uint32_t kDefaultPerfPages = 64;
// Batches waiting for JavaScript per drain: 64 x 256 KiB = 16 MiB at most, by default.
constexpr size_t kMaxPending = 64;
// Longest a drain thread sleeps in poll: bounds how long close() waits for it to notice.
constexpr int kMaxPollMs = 100;
constexpr const char *kVmlinuxBtf = "/sys/kernel/btf/vmlinux";

// ---- libbpf log capture: the verifier's words go into the error JavaScript sees ----------

// Per thread, so that a drain thread's rare warnings never mix into a load's log.
constexpr size_t kLogKeep = 16 * 1024;
constexpr size_t kLogInMessage = 4 * 1024;
thread_local std::string t_log;

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[8192];
  int n = vsnprintf(line, sizeof(line), fmt, args);
  if (n <= 0) return n;
  t_log.append(line, std::min<size_t>(static_cast<size_t>(n), sizeof(line) - 1));
  if (t_log.size() > 2 * kLogKeep) t_log.erase(0, t_log.size() - kLogKeep);
  return n;
}

// The log written since the last call (its last kLogKeep bytes), and a fresh start.
std::string take_log() {
  std::string out;
  out.swap(t_log);
  if (out.size() > kLogKeep) out.erase(0, out.size() - kLogKeep);
  return out;
}

// The last `max` bytes of a log, cut at a line start.
std::string log_tail(const std::string &log, size_t max) {
  if (log.size() <= max) return log;
  size_t from = log.size() - max;
  size_t nl = log.find('\n', from);
  return "...\n" + log.substr(nl == std::string::npos ? from : nl + 1);
}

std::string errno_name(int err) {
  if (err == 524) return "ENOTSUPP";  // kernel-internal "not supported", leaks out of bpf()
  const char *name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

std::string errno_text(int err) {
  if (err == 524) return "Operation not supported by the kernel";
  return strerror(err);
}

// ---- privilege and kernel hints -----------------------------------------------------------

constexpr int kCapNetAdmin = 12;
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

uint64_t effective_caps() {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f) return 0;
  char line[256];
  uint64_t caps = 0;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "CapEff:", 7) == 0) {
      caps = strtoull(line + 7, nullptr, 16);
      break;
    }
  }
  fclose(f);
  return caps;
}

enum class Need { Load, Attach, Cgroup };

// Why the kernel said EPERM, in words: which capability this process lacks, or that it lacks
// none and the refusal has another cause.
std::string eperm_hint(Need need) {
  uint64_t caps = effective_caps();
  auto has = [caps](int cap) { return (caps >> cap) & 1; };
  bool admin = has(kCapSysAdmin);
  std::vector<std::string> lacking;
  if (!admin && !has(kCapBpf)) lacking.push_back("CAP_BPF");
  if (!admin && !has(kCapPerfmon) && need != Need::Cgroup) lacking.push_back("CAP_PERFMON");
  if (need == Need::Cgroup && !has(kCapNetAdmin)) lacking.push_back("CAP_NET_ADMIN");
  std::string required = need == Need::Cgroup ? "root, or CAP_BPF and CAP_NET_ADMIN"
                                              : "root, or CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)";
  if (!lacking.empty()) {
    std::string list;
    for (auto &c : lacking) list += (list.empty() ? "" : ", ") + c;
    return "this needs " + required + "; this process lacks " + list;
  }
  return "this process has the capabilities BPF needs (" + required +
         "), so the kernel refused for another reason: a program type this kernel does not allow "
         "(fentry/fexit and BPF LSM fail with EPERM on some kernels), lockdown, or a seccomp filter";
}

std::string btf_hint() {
  if (access(kVmlinuxBtf, R_OK) == 0) return "";
  return std::string("kernel BTF ") + kVmlinuxBtf +
         " is missing: CO-RE objects need a kernel built with CONFIG_DEBUG_INFO_BTF=y";
}

// Throws an Error carrying `code` (errno name), `errno` and `libbpfLog`: the shape the
// TypeScript NativeError wraps.
[[noreturn]] void throw_native(Napi::Env env, const std::string &what, int err, const std::string &log = "",
                               const std::string &hint = "") {
  err = err < 0 ? -err : err;
  if (err == 0) err = EINVAL;
  std::string message = what + ": " + errno_text(err) + " (" + errno_name(err) + ")";
  if (!hint.empty()) message += "; " + hint;
  if (!log.empty()) message += "\n--- libbpf log (tail) ---\n" + log_tail(log, kLogInMessage);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, errno_name(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("libbpfLog", Napi::String::New(env, log));
  throw error;
}

[[noreturn]] void throw_type(Napi::Env env, const std::string &message) {
  throw Napi::TypeError::New(env, message);
}

std::string arg_string(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsString()) throw_type(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> arg_buffer(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw_type(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

// An optional non-negative integer option; a present but invalid value is an error, never
// quietly the default.
uint32_t opt_u32(const Napi::Object &opts, const char *key, uint32_t fallback, uint32_t min) {
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= min && d <= 0xffffffffu) || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw_type(opts.Env(), std::string("option ") + key + " must be an integer >= " + std::to_string(min));
  return static_cast<uint32_t>(d);
}

bool is_per_cpu(enum bpf_map_type type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- drain threads ----------------------------------------------------------------------

using ebbflow::Batch;
using ebbflow::Framer;
using ebbflow::round8;

struct Drain {
  // Set before the thread starts, then read-only.
  std::string map_name;
  bool perf = false;
  uint64_t flush_ms = kDefaultFlushMs;
  ring_buffer *rb = nullptr;
  perf_buffer *pb = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  napi_env env = nullptr;
  napi_ref callback = nullptr;  // JavaScript thread only: close() delivers through it
  std::thread thread;
  bool torn_down = false;  // JavaScript thread only

  // The batch being filled: drain thread only (batch_bytes set before the thread starts).
  Framer framer{kDefaultBatchBytes};
  uint64_t started_ms = 0;

  // Shared between the drain thread and the JavaScript thread.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable space_cv;  // the queue has room, or abandon was set
  std::condition_variable done_cv;   // a batch was queued, or the thread finished
  std::deque<Batch *> queue;
  bool wake_scheduled = false;
  bool finished = false;
  bool abandon = false;  // no JavaScript will take batches any more: drop them

  // stats()
  std::atomic<uint64_t> n_batches{0}, n_records{0}, n_bytes{0}, n_lost{0};

  ~Drain() {
    for (Batch *b : queue) delete b;
  }

  // ---- drain thread side ----

  void append(const void *data, size_t size) {
    if (!framer.append(data, size, [this](Batch *b) { hand_over(b); })) {
      n_lost.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (framer.records() == 1) started_ms = now_ms();
    n_records.fetch_add(1, std::memory_order_relaxed);
  }

  void flush() {
    framer.flush([this](Batch *b) { hand_over(b); });
  }

  void hand_over(Batch *b) {
    n_batches.fetch_add(1, std::memory_order_relaxed);
    n_bytes.fetch_add(b->size, std::memory_order_relaxed);
    push(b);
  }

  // Blocks while kMaxPending batches wait: the backpressure described at the top.
  void push(Batch *b) {
    std::unique_lock<std::mutex> lock(mu);
    space_cv.wait(lock, [this] { return queue.size() < kMaxPending || abandon; });
    if (abandon) {
      lock.unlock();
      delete b;
      return;
    }
    queue.push_back(b);
    bool wake = !wake_scheduled;
    wake_scheduled = true;
    lock.unlock();
    done_cv.notify_all();
    // Fails only while Node shuts down; the cleanup hook then frees what is queued.
    if (wake) napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
  }

  void run() {
    while (!stop.load(std::memory_order_acquire)) {
      if (framer.records() > 0 && now_ms() - started_ms >= flush_ms) flush();
      else if (framer.records() == 0 && framer.pending_lost() > 0) flush();
      // flushMs counts from a batch's first record, so an idle drain sleeps the longest.
      int timeout = kMaxPollMs;
      if (framer.records() > 0) {
        int64_t left = static_cast<int64_t>(started_ms + flush_ms) - static_cast<int64_t>(now_ms());
        timeout = static_cast<int>(std::clamp<int64_t>(left, 1, kMaxPollMs));
      }
      int err = perf ? perf_buffer__poll(pb, timeout) : ring_buffer__poll(rb, timeout);
      // ring_buffer__poll consumes only rings that woke it; records written with
      // BPF_RB_NO_WAKEUP (wakeup_bytes) wait until a timeout drains them here.
      if (err == 0 && !perf) err = ring_buffer__consume(rb);
      if (err < 0 && err != -EINTR) {
        fprintf(stderr, "ebbflow native: polling %s buffer %s failed: %s; its drain stops\n", perf ? "perf" : "ring",
                map_name.c_str(), strerror(-err));
        break;
      }
    }
    // What the kernel still holds goes out before the thread ends (close() detached the
    // programs first, so this ends).
    if (perf) perf_buffer__consume(pb);
    else ring_buffer__consume(rb);
    flush();
    {
      std::lock_guard<std::mutex> lock(mu);
      finished = true;
    }
    done_cv.notify_all();
  }

  static int on_ring_sample(void *ctx, void *data, size_t size) {
    static_cast<Drain *>(ctx)->append(data, size);
    return 0;
  }

  static void on_perf_sample(void *ctx, int, void *data, __u32 size) { static_cast<Drain *>(ctx)->append(data, size); }

  static void on_perf_lost(void *ctx, int, __u64 count) {
    auto *d = static_cast<Drain *>(ctx);
    d->framer.lose(count);
    d->n_lost.fetch_add(count, std::memory_order_relaxed);
  }

  // ---- JavaScript thread side ----

  Batch *pop() {
    std::lock_guard<std::mutex> lock(mu);
    if (queue.empty()) return nullptr;
    Batch *b = queue.front();
    queue.pop_front();
    space_cv.notify_one();
    return b;
  }

  // Hands one batch to onBatch(batch, records, lost). Throws what the callback throws.
  static void deliver(Napi::Env env, Napi::Function callback, Batch *b) {
    Napi::HandleScope scope(env);
    uint32_t records = b->records;
    double lost = static_cast<double>(b->lost);
    Napi::Buffer<uint8_t> buffer;
    if (b->size == 0) {
      buffer = Napi::Buffer<uint8_t>::New(env, 0);
      delete b;
    } else {
      uint8_t *data = b->data;
      size_t size = b->size;
      buffer = Napi::Buffer<uint8_t>::NewOrCopy(env, data, size, [](Napi::Env, uint8_t *, Batch *owner) { delete owner; }, b);
    }
    callback.Call(env.Undefined(), {buffer, Napi::Number::New(env, records), Napi::Number::New(env, lost)});
  }

  // The thread-safe function's call_js: empties the queue. A throwing onBatch becomes an
  // 'uncaughtException', as a throwing event listener would; the rest waits for the next wake.
  static void on_wake(napi_env raw_env, napi_value js_callback, void *context, void *) {
    if (raw_env == nullptr) return;  // Node is shutting down
    auto *d = static_cast<std::shared_ptr<Drain> *>(context)->get();
    {
      std::lock_guard<std::mutex> lock(d->mu);
      d->wake_scheduled = false;
    }
    if (d->torn_down) return;
    Napi::Env env(raw_env);
    Napi::Function callback(raw_env, js_callback);
    while (Batch *b = d->pop()) {
      try {
        deliver(env, callback, b);
      } catch (const Napi::Error &e) {
        bool again;
        {
          std::lock_guard<std::mutex> lock(d->mu);
          again = !d->queue.empty() && !d->wake_scheduled;
          if (again) d->wake_scheduled = true;
        }
        if (again) napi_call_threadsafe_function(d->tsfn, nullptr, napi_tsfn_nonblocking);
        // Not left pending: Node would only warn (DEP0168) and drop it for addons built for
        // a stable Node-API version.
        napi_fatal_exception(raw_env, e.Value());
        return;
      }
    }
  }

  static void on_tsfn_finalize(napi_env, void *data, void *) { delete static_cast<std::shared_ptr<Drain> *>(data); }

  // Tells the thread to stop and drop whatever it would hand over; JavaScript will not run.
  void abandon_and_join() {
    stop.store(true, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mu);
      abandon = true;
      for (Batch *b : queue) delete b;
      queue.clear();
    }
    space_cv.notify_all();
    if (thread.joinable()) thread.join();
  }

  // Node is tearing the environment down (process exit, worker end): stop the thread before
  // Node frees the thread-safe function it calls. Runs before the thread-safe function's own
  // cleanup hook, as hooks run newest first and ours was added after it was created.
  static void on_env_teardown(void *arg) {
    auto *d = static_cast<Drain *>(arg);
    d->abandon_and_join();
    napi_release_threadsafe_function(d->tsfn, napi_tsfn_abort);
    d->torn_down = true;
  }
};

// A cgroup program attached with bpf_prog_attach (kernels without cgroup links, before 5.7):
// unlike a link it outlives this process, so close() must detach it.
struct LegacyAttach {
  int prog_fd;
  int cgroup_fd;
  enum bpf_attach_type type;
};

// ---- BpfObject --------------------------------------------------------------------------

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
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
                           InstanceMethod<&BpfObject::OpenPerfBuffer>("openPerfBuffer"),
                           InstanceMethod<&BpfObject::MapDump>("mapDump"),
                           InstanceMethod<&BpfObject::MapLookup>("mapLookup"),
                           InstanceMethod<&BpfObject::MapUpdate>("mapUpdate"),
                           InstanceMethod<&BpfObject::MapDelete>("mapDelete"),
                           InstanceMethod<&BpfObject::Stats>("stats"),
                           InstanceMethod<&BpfObject::Close>("close"),
                       });
  }

  // new BpfObject(path): bpf_object__open_file.
  explicit BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    path_ = arg_string(info, 0, "path");
    take_log();
    obj_ = bpf_object__open_file(path_.c_str(), nullptr);
    if (!obj_) {
      int err = errno;
      throw_native(env, "opening BPF object " + path_, err, take_log());
    }
  }

  // The finalizer: JavaScript dropped the object without close(). No JavaScript may run here,
  // so batches still queued are dropped.
  ~BpfObject() override { Teardown(nullptr); }

 private:
  napi_env env_;
  std::string path_;
  bpf_object *obj_ = nullptr;
  bool loaded_ = false;
  bool closed_ = false;
  std::vector<bpf_link *> links_;
  std::vector<LegacyAttach> legacy_;
  std::vector<std::shared_ptr<Drain>> drains_;
  uint64_t closed_batches_ = 0, closed_records_ = 0, closed_bytes_ = 0, closed_lost_ = 0;

  void RequireOpen(Napi::Env env) {
    if (closed_) throw_native(env, "BPF object " + path_ + " is closed", EBADF);
  }

  void RequireLoaded(Napi::Env env, bool loaded) {
    RequireOpen(env);
    if (loaded_ != loaded)
      throw_native(env, "BPF object " + path_ + (loaded ? " is not loaded yet" : " is already loaded"), EINVAL);
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

  int MapFd(Napi::Env env, bpf_map *map, const std::string &name) {
    int fd = bpf_map__fd(map);
    if (fd < 0) throw_native(env, "map " + name + " was not created (autocreate off?)", ENOENT);
    return fd;
  }

  // setGlobal(name, Buffer): a `const volatile` (.rodata) or .data/.bss global, before load.
  Napi::Value SetGlobal(const Napi::CallbackInfo &info) {
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

  Napi::Value SetMaxEntries(const Napi::CallbackInfo &info) {
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

  Napi::Value SetAutocreate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    std::string name = arg_string(info, 0, "map");
    int err = bpf_map__set_autocreate(FindMap(env, name), info[1].ToBoolean().Value());
    if (err) throw_native(env, "setting autocreate of map " + name, err);
    return env.Undefined();
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    std::string name = arg_string(info, 0, "prog");
    int err = bpf_program__set_autoload(FindProgram(env, name), info[1].ToBoolean().Value());
    if (err) throw_native(env, "setting autoload of program " + name, err);
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, false);
    take_log();
    int err = bpf_object__load(obj_);
    if (err) {
      std::string log = take_log();
      std::string hint = btf_hint();
      if (err == -EPERM) hint += (hint.empty() ? "" : "; ") + eperm_hint(Need::Load);
      throw_native(env, "loading BPF object " + path_, err, log, hint);
    }
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

  // attach(prog, { cgroupPath?, legacyCgroupAttach? }): tracepoint, raw_tp and tp_btf programs
  // by their section; cgroup programs to the cgroup v2 directory given.
  Napi::Value Attach(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = arg_string(info, 0, "prog");
    bpf_program *prog = FindProgram(env, name);
    std::string cgroup;
    bool legacy_only = false;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object opts = info[1].As<Napi::Object>();
      Napi::Value v = opts.Get("cgroupPath");
      if (v.IsString()) cgroup = v.As<Napi::String>().Utf8Value();
      else if (!v.IsUndefined() && !v.IsNull()) throw_type(env, "cgroupPath must be a string");
      legacy_only = opts.Get("legacyCgroupAttach").ToBoolean().Value();
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
    int link_err = 0;
    if (!legacy_only) {
      // A cgroup link (5.7+) runs alongside other programs, as BPF_F_ALLOW_MULTI would, and
      // detaches when destroyed or when this process dies.
      bpf_link *link = bpf_program__attach_cgroup(prog, fd);
      if (link) {
        close(fd);
        links_.push_back(link);
        return env.Undefined();
      }
      link_err = errno;
      if (link_err == EPERM) {
        close(fd);
        throw_native(env, "attaching program " + name + " to cgroup " + cgroup, link_err, take_log(),
                     eperm_hint(Need::Cgroup));
      }
    }
    enum bpf_attach_type attach_type = bpf_program__expected_attach_type(prog);
    if (bpf_prog_attach(bpf_program__fd(prog), fd, attach_type, BPF_F_ALLOW_MULTI) != 0) {
      int err = errno;
      close(fd);
      std::string what = "attaching program " + name + " to cgroup " + cgroup;
      if (link_err) what += " (as a link: " + errno_text(link_err) + "; with bpf_prog_attach)";
      throw_native(env, what, err, take_log(), err == EPERM ? eperm_hint(Need::Cgroup) : "");
    }
    legacy_.push_back({bpf_program__fd(prog), fd, attach_type});
    return env.Undefined();
  }

  Napi::Value OpenBuffer(const Napi::CallbackInfo &info, bool perf) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = arg_string(info, 0, "map");
    if (info.Length() < 3 || !info[2].IsFunction()) throw_type(env, "onBatch must be a function");
    Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    Napi::Function callback = info[2].As<Napi::Function>();
    bpf_map *map = FindMap(env, name);
    enum bpf_map_type want = perf ? BPF_MAP_TYPE_PERF_EVENT_ARRAY : BPF_MAP_TYPE_RINGBUF;
    if (bpf_map__type(map) != want)
      throw_native(env, "map " + name + " is not a " + (perf ? "perf event array" : "ring buffer"), EINVAL);
    int fd = MapFd(env, map, name);
    for (auto &d : drains_)
      if (d->map_name == name) throw_native(env, "map " + name + " already has a drain", EBUSY);

    auto drain = std::make_shared<Drain>();
    drain->map_name = name;
    drain->perf = perf;
    drain->framer.batch_bytes = opt_u32(opts, "batchBytes", kDefaultBatchBytes, 1);
    drain->flush_ms = opt_u32(opts, "flushMs", kDefaultFlushMs, 0);
    drain->env = env;
    uint32_t pages = perf ? opt_u32(opts, "pageCount", kDefaultPerfPages, 1) : 0;
    if (perf && (pages & (pages - 1)) != 0) throw_type(env, "option pageCount must be a power of two");
    take_log();
    if (perf) {
      drain->pb = perf_buffer__new(fd, pages, Drain::on_perf_sample, Drain::on_perf_lost, drain.get(), nullptr);
      if (!drain->pb) throw_native(env, "opening perf buffer " + name, errno, take_log());
    } else {
      drain->rb = ring_buffer__new(fd, Drain::on_ring_sample, drain.get(), nullptr);
      if (!drain->rb) throw_native(env, "opening ring buffer " + name, errno, take_log());
    }
    // Until the thread runs, a failure here must free the buffer itself.
    auto free_buffers = [&drain] {
      if (drain->rb) ring_buffer__free(drain->rb);
      if (drain->pb) perf_buffer__free(drain->pb);
      drain->rb = nullptr;
      drain->pb = nullptr;
    };
    // The thread-safe function's context keeps the Drain alive until Node is done with it:
    // a wake may still be queued after close().
    auto *context = new std::shared_ptr<Drain>(drain);
    napi_status status = napi_create_threadsafe_function(
        env, callback, nullptr, Napi::String::New(env, "ebbflow:drain:" + name), 0, 1, context,
        Drain::on_tsfn_finalize, context, Drain::on_wake, &drain->tsfn);
    if (status != napi_ok) {
      delete context;
      free_buffers();
      throw_native(env, "creating the thread-safe function for " + name, ENOMEM);
    }
    napi_create_reference(env, callback, 1, &drain->callback);
    napi_add_env_cleanup_hook(env, Drain::on_env_teardown, drain.get());

    // The thread takes no signals: Node's handlers run on its own threads' behalf anyway, and
    // the drain's poll should not be cut short.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    Drain *raw = drain.get();
    drain->thread = std::thread([raw] { raw->run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    drains_.push_back(std::move(drain));
    return env.Undefined();
  }

  Napi::Value OpenRingBuffer(const Napi::CallbackInfo &info) { return OpenBuffer(info, false); }
  Napi::Value OpenPerfBuffer(const Napi::CallbackInfo &info) { return OpenBuffer(info, true); }

  size_t ValueBytes(bpf_map *map) {
    size_t value_size = bpf_map__value_size(map);
    if (!is_per_cpu(bpf_map__type(map))) return value_size;
    return round8(value_size) * static_cast<size_t>(std::max(libbpf_num_possible_cpus(), 1));
  }

  // mapDump(name): every entry. Per-CPU values come as the kernel lays them out: the value
  // size rounded up to 8, once per possible CPU.
  Napi::Value MapDump(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = arg_string(info, 0, "map");
    bpf_map *map = FindMap(env, name);
    int fd = MapFd(env, map, name);
    bool per_cpu = is_per_cpu(bpf_map__type(map));
    int cpus = per_cpu ? std::max(libbpf_num_possible_cpus(), 1) : 1;
    size_t key_size = bpf_map__key_size(map);
    size_t value_size = bpf_map__value_size(map);
    size_t stride = ValueBytes(map);
    std::vector<uint8_t> keys, values;
    size_t count = 0;

    // Batch lookup (5.6+): a few syscalls for the whole map. Iteration otherwise, or when the
    // kernel has no batch operations for this map type.
    bool batched = true;
    {
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
        if (err && e != ENOENT) {
          if (first && n == 0) {
            batched = false;
            break;
          }
          throw_native(env, "reading map " + name, e);
        }
        first = false;
        count += n;
        if (err) break;  // ENOENT: that was the last of them
      }
      if (!batched) count = 0;
    }
    if (!batched) {
      std::vector<uint8_t> key(key_size), next(key_size);
      bool have = false;
      for (;;) {
        if (bpf_map_get_next_key(fd, have ? key.data() : nullptr, next.data()) != 0) {
          if (errno == ENOENT) break;
          throw_native(env, "iterating map " + name, errno);
        }
        // If `key` was deleted meanwhile, hash maps restart from their first key: a dump
        // taken during deletions can repeat entries, so stop at the map's capacity.
        if (count >= bpf_map__max_entries(map)) break;
        memcpy(key.data(), next.data(), key_size);
        have = true;
        keys.resize((count + 1) * key_size);
        values.resize((count + 1) * stride);
        if (bpf_map_lookup_elem(fd, key.data(), values.data() + count * stride) != 0) {
          if (errno == ENOENT) continue;  // deleted between the two calls
          throw_native(env, "reading map " + name, errno);
        }
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

  void CheckKey(Napi::Env env, bpf_map *map, const std::string &name, size_t got) {
    if (got != bpf_map__key_size(map))
      throw_native(env,
                   "map " + name + " has " + std::to_string(bpf_map__key_size(map)) + "-byte keys, got " +
                       std::to_string(got),
                   EINVAL);
  }

  Napi::Value MapLookup(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = arg_string(info, 0, "map");
    bpf_map *map = FindMap(env, name);
    auto key = arg_buffer(info, 1, "key");
    CheckKey(env, map, name, key.Length());
    std::vector<uint8_t> value(ValueBytes(map));
    if (bpf_map_lookup_elem(MapFd(env, map, name), key.Data(), value.data()) != 0) {
      if (errno == ENOENT) return env.Null();
      throw_native(env, "looking up map " + name, errno);
    }
    return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
  }

  Napi::Value MapUpdate(const Napi::CallbackInfo &info) {
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
    CheckKey(env, map, name, key.Length());
    if (value.Length() != ValueBytes(map))
      throw_native(env,
                   "map " + name + " takes " + std::to_string(ValueBytes(map)) + "-byte values, got " +
                       std::to_string(value.Length()),
                   EINVAL);
    if (bpf_map_update_elem(MapFd(env, map, name), key.Data(), value.Data(), flags) != 0)
      throw_native(env, "updating map " + name, errno);
    return env.Undefined();
  }

  Napi::Value MapDelete(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    RequireLoaded(env, true);
    std::string name = arg_string(info, 0, "map");
    bpf_map *map = FindMap(env, name);
    auto key = arg_buffer(info, 1, "key");
    CheckKey(env, map, name, key.Length());
    if (bpf_map_delete_elem(MapFd(env, map, name), key.Data()) != 0) {
      if (errno == ENOENT) return Napi::Boolean::New(env, false);
      throw_native(env, "deleting from map " + name, errno);
    }
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
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
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (closed_) return env.Undefined();
    std::optional<Napi::Error> first_error;
    Teardown(&first_error);
    if (first_error) throw *first_error;
    return env.Undefined();
  }

  // With `errors` (close()): batches go to JavaScript. Without (the finalizer): dropped.
  void Teardown(std::optional<Napi::Error> *errors) {
    if (closed_) return;
    closed_ = true;  // a close() from inside onBatch below returns at once
    // Detach first: after this no new records arrive, so the threads' last drain ends.
    for (bpf_link *link : links_) bpf_link__destroy(link);
    links_.clear();
    for (auto &a : legacy_) {
      bpf_prog_detach2(a.prog_fd, a.cgroup_fd, a.type);
      close(a.cgroup_fd);
    }
    legacy_.clear();
    for (auto &d : drains_) d->stop.store(true, std::memory_order_release);
    for (auto &d : drains_) {
      if (d->torn_down) continue;
      if (errors) {
        Napi::Env env(env_);
        Napi::HandleScope scope(env);
        napi_value cb_value;
        napi_get_reference_value(env_, d->callback, &cb_value);
        Napi::Function callback(env_, cb_value);
        for (;;) {
          while (Batch *b = d->pop()) {
            try {
              Drain::deliver(env, callback, b);
            } catch (const Napi::Error &e) {
              if (!*errors) *errors = e;
            }
          }
          std::unique_lock<std::mutex> lock(d->mu);
          if (d->finished && d->queue.empty()) break;
          d->done_cv.wait_for(lock, std::chrono::milliseconds(kMaxPollMs),
                              [&d] { return d->finished || !d->queue.empty(); });
        }
        if (d->thread.joinable()) d->thread.join();
      } else {
        d->abandon_and_join();
      }
      napi_remove_env_cleanup_hook(env_, Drain::on_env_teardown, d.get());
      napi_release_threadsafe_function(d->tsfn, napi_tsfn_release);
      napi_delete_reference(env_, d->callback);
      d->callback = nullptr;
      d->torn_down = true;
    }
    for (auto &d : drains_) {
      closed_batches_ += d->n_batches.load();
      closed_records_ += d->n_records.load();
      closed_bytes_ += d->n_bytes.load();
      closed_lost_ += d->n_lost.load();
      if (d->thread.joinable()) d->thread.join();  // torn down by the env hook: already joined
      if (d->rb) ring_buffer__free(d->rb);
      if (d->pb) perf_buffer__free(d->pb);
      d->rb = nullptr;
      d->pb = nullptr;
    }
    drains_.clear();
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }
};

// ---- module functions -------------------------------------------------------------------

Napi::Value ProbeFeatures(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  take_log();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ringbuf", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1);
  out.Set("perfbuf", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_PERF_EVENT_ARRAY, nullptr) == 1);
  out.Set("btf", access(kVmlinuxBtf, R_OK) == 0);
  out.Set("cgroupSkb", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nullptr) == 1);
  out.Set("numPossibleCpus", static_cast<double>(libbpf_num_possible_cpus()));
  utsname u{};
  uname(&u);
  out.Set("kernelRelease", u.release);
  take_log();
  return out;
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo &info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) throw_native(info.Env(), "reading the number of possible CPUs", n);
  return Napi::Number::New(info.Env(), n);
}

// CLOCK_BOOTTIME in ns, the clock of bpf_ktime_get_boot_ns().
Napi::Value BootTimeNs(const Napi::CallbackInfo &info) {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(libbpf_print);
  exports.Set("BpfObject", BpfObject::Define(env));
  exports.Set("probeFeatures", Napi::Function::New(env, ProbeFeatures));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("bootTimeNs", Napi::Function::New(env, BootTimeNs));
  return exports;
}

}  // namespace

NODE_API_MODULE(ebbflow_native, Init)
