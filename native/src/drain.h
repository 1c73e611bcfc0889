// The drain core: one thread per open ring buffer takes records out of the kernel, frames them into
// batches (framing.h) and hands whole batches to JavaScript, one call per batch, never one per
// record. It does not decode records.
//
// Hand-off and backpressure: each drain has a queue of at most kMaxPending batches and
// kMaxPendingBytes (one batch whatever its size). A drain
// thread that finds it full blocks; while it blocks it takes nothing from the kernel buffer,
// which fills up, and the BPF side counts what it cannot reserve. Memory stays bounded and
// every loss is counted. A thread-safe function (napi_threadsafe_function) only wakes the
// JavaScript thread, which then empties the queue; at most one wake per drain is outstanding.
// The queue is ours rather than the thread-safe function's so that close() can run
// synchronously on the JavaScript thread: it delivers what the threads still hand over while
// it waits for them, where a thread blocked in a thread-safe function's own full queue would
// wait for the very thread that is joining it.
//
// A wake delivers for at most kMaxDeliverMs, then the rest continues from setImmediate: under a
// flood the drain thread refills the queue as fast as JavaScript empties it, and a wake that
// emptied the queue held the event loop (timers, the producer's sockets) for up to a second.
//
// Memory: JavaScript gets each batch copied into one Buffer per drain, made once by Node and
// refilled for the next batch, so the bytes are valid only during the onBatch call; the block
// the drain thread filled is freed as soon as it is copied. Before, the block itself was handed
// over as an external Buffer, freed only when a garbage collection found it dead; V8 counts
// every new Buffer's bytes towards its next full collection, and under a syscall storm that
// started a full mark-compact every 40-70 ms on a 17 MB heap (bench/RESULTS.md, issue 20).
// A batch cut short by flushMs and using under a quarter of its block is still copied once,
// on the drain thread, into a block of its exact size, so the queue's byte bound
// (kMaxPendingBytes) holds the memory it counts.
//
// Event loop: an open buffer's thread-safe function stays referenced, so a process with open
// buffers stays alive (like an open socket) until close() releases it. At process exit an
// environment cleanup hook stops the thread before Node frees the thread-safe function it uses.
#pragma once

#include <napi.h>

#include "framing.h"

#include <bpf/libbpf.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace ebbflow {

constexpr size_t kDefaultBatchBytes = 256 * 1024;
constexpr uint32_t kDefaultFlushMs = 50;
// Bytes of batches waiting for JavaScript per drain. It was 64 batches (16 MiB at the default
// 256 KiB, 4 GiB at the largest batchBytes): past a few batches JavaScript is behind for
// longer than a burst, and the ring buffer (8 MiB by default) is the better place for the
// backlog, since its overflow is counted per family and reason in the kernel (issue 20:
// the collector's peak memory under overload).
constexpr size_t kMaxPendingBytes = 4 * 1024 * 1024;
// And at most this many batches, however small (a batch per record is a batch).
constexpr size_t kMaxPending = 64;
// Longest a drain thread sleeps in poll: bounds how long close() waits for it to notice.
constexpr int kMaxPollMs = 100;
// Longest one wake delivers batches before it lets the event loop turn (see deliver_some).
constexpr uint64_t kMaxDeliverMs = 10;

struct Drain {
  // Set before the thread starts, then read-only.
  std::string map_name;
  uint64_t flush_ms = kDefaultFlushMs;
  ring_buffer *rb = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  napi_ref callback = nullptr;  // JavaScript thread only: close() delivers through it
  std::thread thread;
  bool torn_down = false;  // JavaScript thread only
  bool continuation_scheduled = false;  // JavaScript thread only: a setImmediate will deliver
  napi_ref reuse = nullptr;  // JavaScript thread only: the Buffer every batch is copied into
  bool delivering = false;   // JavaScript thread only: an onBatch call is running

  // The batch being filled: drain thread only (batch_bytes set before the thread starts).
  Framer framer{kDefaultBatchBytes};
  uint64_t started_ms = 0;

  // Shared between the drain thread and the JavaScript thread.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable space_cv;  // the queue has room, or abandon was set
  std::condition_variable done_cv;   // a batch was queued, or the thread finished
  std::deque<Batch *> queue;
  size_t queued_bytes = 0;
  bool wake_scheduled = false;
  bool finished = false;
  bool abandon = false;  // no JavaScript will take batches any more: drop them

  // stats()
  std::atomic<uint64_t> n_batches{0}, n_records{0}, n_bytes{0}, n_lost{0};

  ~Drain();

  // Creates the thread-safe function and starts the thread (buffers already opened). The
  // Drain stays alive until both this owner and Node are done with it.
  static void start(Napi::Env env, const std::shared_ptr<Drain> &drain, Napi::Function callback);

  // ---- drain thread side ----
  void run();
  static int on_ring_sample(void *ctx, void *data, size_t size);

  // ---- JavaScript thread side ----
  Batch *pop();
  // Hands one batch to onBatch(batch, records, lost) and frees it. Throws what the callback
  // throws.
  void deliver(Napi::Env env, Napi::Function callback, Batch *b);
  // Stops the thread after it handed over what the kernel still holds, delivering every batch
  // to the callback meanwhile. A callback that throws does not stop it: the first error is
  // kept in `first_error`.
  void finish(Napi::Env env, std::optional<Napi::Error> *first_error);
  // Tells the thread to stop and drop whatever it would hand over; JavaScript will not run.
  void abandon_and_join();
  // Releases what the JavaScript side holds (thread-safe function, callback, cleanup hook).
  void release(napi_env env);
  // Frees the kernel buffer (the thread has ended).
  void free_buffers();

 private:
  void append(const void *data, size_t size);
  void flush();
  void hand_over(Batch *b);
  void push(Batch *b);
  static void on_wake(napi_env raw_env, napi_value js_callback, void *context, void *);
  static void deliver_some(Napi::Env env, Napi::Function callback, const std::shared_ptr<Drain> &self);
  static void continue_later(Napi::Env env, const std::shared_ptr<Drain> &self);
  static void on_tsfn_finalize(napi_env, void *data, void *);
  static void on_env_teardown(void *arg);
};

}  // namespace ebbflow
