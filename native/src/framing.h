// How a drain frames kernel records into batches (the layout is described at the top of
// addon.cc). On its own, without Node-API or libbpf, so that native/fuzz/ compiles exactly this
// code under AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace ebbflow {

inline size_t round8(size_t n) { return (n + 7) & ~size_t(7); }

// One batch handed to JavaScript.
struct Batch {
  uint8_t *data = nullptr;  // malloc'd; freed once delivered (copied into the drain's Buffer)
  size_t size = 0;
  uint32_t records = 0;
  uint64_t lost = 0;
  Batch() = default;
  Batch(const Batch &) = delete;
  Batch &operator=(const Batch &) = delete;
  ~Batch() { free(data); }
};

// The batch being filled. Used by one thread only. Finished batches go to `emit(Batch *)`,
// which takes ownership.
class Framer {
 public:
  // A frame's size field is a u32 and the padding must not wrap it: larger records (which no
  // ring or perf buffer delivers) are counted as lost instead of framed with a wrong size.
  static constexpr size_t kMaxRecord = UINT32_MAX - 7;

  // Bytes after which a batch is handed over (set before the first append).
  size_t batch_bytes;

  explicit Framer(size_t batch_bytes_) : batch_bytes(batch_bytes_) {}
  Framer(const Framer &) = delete;
  Framer &operator=(const Framer &) = delete;
  ~Framer() { free(buf_); }

  uint32_t records() const { return records_; }
  uint64_t pending_lost() const { return pending_lost_; }

  // Counts records lost before they reached us (perf buffer overruns); they ride with the next
  // batch.
  void lose(uint64_t count) { pending_lost_ += count; }

  // Frames one record. False when it could not be kept (out of memory, or too large): it is
  // then counted as lost in the next batch.
  template <typename Emit>
  bool append(const void *data, size_t size, Emit &&emit) {
    if (size > kMaxRecord) {
      pending_lost_++;
      return false;
    }
    size_t frame = 4 + round8(size);
    if (records_ > 0 && len_ + frame > batch_bytes) flush(emit);
    if (len_ + frame > cap_) {
      // Starts at the size the last handed-over block had, so a busy drain fills each block
      // without a realloc (and so without a copy), while a quiet one stays small.
      size_t want = std::max({len_ + frame, cap_ * 2, next_cap_, size_t(16 * 1024)});
      if (len_ + frame <= batch_bytes) want = std::min(want, batch_bytes);
      auto *grown = static_cast<uint8_t *>(realloc(buf_, want));
      if (!grown) {  // out of memory: the record is lost, and counted
        pending_lost_++;
        return false;
      }
      buf_ = grown;
      cap_ = want;
    }
    uint32_t size32 = static_cast<uint32_t>(size);
    memcpy(buf_ + len_, &size32, 4);  // x86-64 and arm64 are little-endian, as the format is
    if (size > 0) memcpy(buf_ + len_ + 4, data, size);
    memset(buf_ + len_ + 4 + size, 0, frame - 4 - size);
    len_ += frame;
    records_++;
    if (len_ >= batch_bytes) flush(emit);
    return true;
  }

  // Hands over the batch being filled, if it holds a record or a loss.
  template <typename Emit>
  void flush(Emit &&emit) {
    if (records_ == 0 && pending_lost_ == 0) return;
    auto *b = new Batch();
    b->records = records_;
    b->lost = pending_lost_;
    if (len_ > 0 && len_ * 4 < cap_) {
      b->data = static_cast<uint8_t *>(malloc(len_));
      if (b->data) {
        memcpy(b->data, buf_, len_);
        b->size = len_;
      }
    }
    if (len_ > 0 && !b->data) {  // hand the block over as it is
      b->data = buf_;
      b->size = len_;
      next_cap_ = std::min(cap_, batch_bytes);
      buf_ = nullptr;
      cap_ = 0;
    }
    len_ = 0;
    records_ = 0;
    pending_lost_ = 0;
    emit(b);
  }

 private:
  uint8_t *buf_ = nullptr;
  size_t cap_ = 0, len_ = 0, next_cap_ = 0;
  uint32_t records_ = 0;
  uint64_t pending_lost_ = 0;
};

}  // namespace ebbflow
