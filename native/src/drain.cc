#include "drain.h"

#include "errors.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <pthread.h>

namespace ebbflow {
namespace {

uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Drain::~Drain() {
  for (Batch *b : queue) delete b;
}

void Drain::start(Napi::Env env, const std::shared_ptr<Drain> &drain, Napi::Function callback) {
  // The thread-safe function's context keeps the Drain alive until Node is done with it:
  // a wake may still be queued after close().
  auto *context = new std::shared_ptr<Drain>(drain);
  napi_status status = napi_create_threadsafe_function(
      env, callback, nullptr, Napi::String::New(env, "ebbflow:drain:" + drain->map_name), 0, 1, context,
      Drain::on_tsfn_finalize, context, Drain::on_wake, &drain->tsfn);
  if (status != napi_ok) {
    delete context;
    throw_native(env, "creating the thread-safe function for " + drain->map_name, ENOMEM);
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
}

// ---- drain thread side ----

void Drain::append(const void *data, size_t size) {
  if (!framer.append(data, size, [this](Batch *b) { hand_over(b); })) {
    n_lost.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (framer.records() == 1) started_ms = now_ms();
  n_records.fetch_add(1, std::memory_order_relaxed);
}

void Drain::flush() {
  framer.flush([this](Batch *b) { hand_over(b); });
}

void Drain::hand_over(Batch *b) {
  n_batches.fetch_add(1, std::memory_order_relaxed);
  n_bytes.fetch_add(b->size, std::memory_order_relaxed);
  push(b);
}

// Blocks while kMaxPending batches or kMaxPendingBytes wait: the backpressure described in drain.h.
void Drain::push(Batch *b) {
  std::unique_lock<std::mutex> lock(mu);
  space_cv.wait(lock, [this, b] {
    return queue.empty() || (queue.size() < kMaxPending && queued_bytes + b->size <= kMaxPendingBytes) ||
           abandon;
  });
  if (abandon) {
    lock.unlock();
    delete b;
    return;
  }
  queue.push_back(b);
  queued_bytes += b->size;
  bool wake = !wake_scheduled;
  wake_scheduled = true;
  lock.unlock();
  done_cv.notify_all();
  // Fails only while Node shuts down; the cleanup hook then frees what is queued.
  if (wake) napi_call_threadsafe_function(tsfn, nullptr, napi_tsfn_nonblocking);
}

void Drain::run() {
  while (!stop.load(std::memory_order_acquire)) {
    if (framer.records() > 0 && now_ms() - started_ms >= flush_ms) flush();
    else if (framer.records() == 0 && framer.pending_lost() > 0) flush();
    // flushMs counts from a batch's first record, so an idle drain sleeps the longest.
    int timeout = kMaxPollMs;
    if (framer.records() > 0) {
      int64_t left = static_cast<int64_t>(started_ms + flush_ms) - static_cast<int64_t>(now_ms());
      timeout = static_cast<int>(std::clamp<int64_t>(left, 1, kMaxPollMs));
    }
    int err = ring_buffer__poll(rb, timeout);
    // ring_buffer__poll consumes only rings that woke it; records written with
    // BPF_RB_NO_WAKEUP (wakeup_bytes) wait until a timeout drains them here.
    if (err == 0) err = ring_buffer__consume(rb);
    if (err < 0 && err != -EINTR) {
      fprintf(stderr, "ebbflow native: polling ring buffer %s failed: %s; its drain stops\n", map_name.c_str(),
              strerror(-err));
      break;
    }
  }
  // What the kernel still holds goes out before the thread ends (close() detached the
  // programs first, so this ends).
  ring_buffer__consume(rb);
  flush();
  {
    std::lock_guard<std::mutex> lock(mu);
    finished = true;
  }
  done_cv.notify_all();
}

int Drain::on_ring_sample(void *ctx, void *data, size_t size) {
  static_cast<Drain *>(ctx)->append(data, size);
  return 0;
}

// ---- JavaScript thread side ----

Batch *Drain::pop() {
  std::lock_guard<std::mutex> lock(mu);
  if (queue.empty()) return nullptr;
  Batch *b = queue.front();
  queue.pop_front();
  queued_bytes -= b->size;
  space_cv.notify_one();
  return b;
}

void Drain::deliver(Napi::Env env, Napi::Function callback, Batch *b) {
  Napi::HandleScope scope(env);
  std::unique_ptr<Batch> owned(b);
  uint32_t records = b->records;
  double lost = static_cast<double>(b->lost);
  size_t size = b->size;
  // The drain's own Buffer, made once by Node and refilled for every batch; a nested delivery
  // (onBatch calling close()) or a batch larger than batchBytes (one huge record) gets one of
  // its own, so no bytes are overwritten while a callback still reads them.
  Napi::Buffer<uint8_t> target;
  bool reused = !delivering && size <= framer.batch_bytes;
  if (reused && reuse == nullptr) {
    target = Napi::Buffer<uint8_t>::New(env, framer.batch_bytes);
    napi_create_reference(env, target, 1, &reuse);  // strong: held until release()
  } else if (reused) {
    napi_value held;
    napi_get_reference_value(env, reuse, &held);
    target = Napi::Buffer<uint8_t>(env, held);
  } else {
    target = Napi::Buffer<uint8_t>::New(env, size);
  }
  if (size > 0) memcpy(target.Data(), b->data, size);
  owned.reset();  // the block goes back to malloc now, not when a garbage collection finds it
  Napi::Value batch = target;
  if (target.Length() != size)
    batch = target.Get("subarray").As<Napi::Function>().Call(target, {Napi::Number::New(env, 0), Napi::Number::New(env, static_cast<double>(size))});
  struct Delivering {
    bool &flag;
    bool was;
    explicit Delivering(bool &f) : flag(f), was(f) { flag = true; }
    ~Delivering() { flag = was; }
  } guard(delivering);
  callback.Call(env.Undefined(), {batch, Napi::Number::New(env, records), Napi::Number::New(env, lost)});
}

void Drain::finish(Napi::Env env, std::optional<Napi::Error> *first_error) {
  Napi::HandleScope scope(env);
  napi_value cb_value;
  napi_get_reference_value(env, callback, &cb_value);
  Napi::Function js_callback(env, cb_value);
  for (;;) {
    while (Batch *b = pop()) {
      try {
        deliver(env, js_callback, b);
      } catch (const Napi::Error &e) {
        if (!*first_error) *first_error = e;
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    if (finished && queue.empty()) break;
    done_cv.wait_for(lock, std::chrono::milliseconds(kMaxPollMs), [this] { return finished || !queue.empty(); });
  }
  if (thread.joinable()) thread.join();
}

// The thread-safe function's call_js: delivers what is queued, unless a continuation already
// will. A throwing onBatch becomes an 'uncaughtException', as a throwing event listener would;
// the rest waits for the next wake.
void Drain::on_wake(napi_env raw_env, napi_value js_callback, void *context, void *) {
  if (raw_env == nullptr) return;  // Node is shutting down
  const auto &self = *static_cast<std::shared_ptr<Drain> *>(context);
  Drain *d = self.get();
  {
    std::lock_guard<std::mutex> lock(d->mu);
    d->wake_scheduled = false;
  }
  if (d->torn_down || d->continuation_scheduled) return;
  deliver_some(Napi::Env(raw_env), Napi::Function(raw_env, js_callback), self);
}

// Delivers queued batches for up to kMaxDeliverMs; what is left then goes on from setImmediate,
// after the event loop has run its timers and sockets. Node runs a thread-safe function's calls
// in one loop (up to 1,000 of them), so a second wake would not let it turn.
void Drain::deliver_some(Napi::Env env, Napi::Function callback, const std::shared_ptr<Drain> &self) {
  Drain *d = self.get();
  uint64_t until = now_ms() + kMaxDeliverMs;
  while (Batch *b = d->pop()) {
    try {
      d->deliver(env, callback, b);
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
      napi_fatal_exception(env, e.Value());
      return;
    }
    if (now_ms() >= until) {
      bool more;
      {
        std::lock_guard<std::mutex> lock(d->mu);
        more = !d->queue.empty();
      }
      if (more) continue_later(env, self);
      return;
    }
  }
}

void Drain::continue_later(Napi::Env env, const std::shared_ptr<Drain> &self) {
  if (self->continuation_scheduled) return;
  self->continuation_scheduled = true;
  std::shared_ptr<Drain> keep = self;  // the Drain outlives close() until this has run
  Napi::Function next = Napi::Function::New(
      env,
      [keep](const Napi::CallbackInfo &info) {
        Drain *d = keep.get();
        d->continuation_scheduled = false;
        if (d->torn_down || d->callback == nullptr) return;
        napi_value cb;
        if (napi_get_reference_value(info.Env(), d->callback, &cb) != napi_ok || cb == nullptr) return;
        deliver_some(info.Env(), Napi::Function(info.Env(), cb), keep);
      },
      "ebbflowDrainContinue");
  env.Global().Get("setImmediate").As<Napi::Function>().Call({next});
}

void Drain::on_tsfn_finalize(napi_env, void *data, void *) { delete static_cast<std::shared_ptr<Drain> *>(data); }

void Drain::abandon_and_join() {
  stop.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu);
    abandon = true;
    for (Batch *b : queue) delete b;
    queue.clear();
    queued_bytes = 0;
  }
  space_cv.notify_all();
  if (thread.joinable()) thread.join();
}

void Drain::release(napi_env raw_env) {
  napi_remove_env_cleanup_hook(raw_env, Drain::on_env_teardown, this);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  napi_delete_reference(raw_env, callback);
  callback = nullptr;
  if (reuse != nullptr) napi_delete_reference(raw_env, reuse);
  reuse = nullptr;
  torn_down = true;
}

void Drain::free_buffers() {
  if (rb) ring_buffer__free(rb);
  rb = nullptr;
}

// Node is tearing the environment down (process exit, worker end): stop the thread before
// Node frees the thread-safe function it calls. Runs before the thread-safe function's own
// cleanup hook, as hooks run newest first and ours was added after it was created.
void Drain::on_env_teardown(void *arg) {
  auto *d = static_cast<Drain *>(arg);
  d->abandon_and_join();
  napi_release_threadsafe_function(d->tsfn, napi_tsfn_abort);
  d->torn_down = true;
}

}  // namespace ebbflow
