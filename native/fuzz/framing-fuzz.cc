// Fuzz harness for the drain's batch framing (src/framing.h), built with AddressSanitizer and
// UndefinedBehaviorSanitizer (`make -C native fuzz`), with libFuzzer when clang has it and
// otherwise with the random driver at the bottom.
//
// An input is a script: a batch size, then operations — append a record (its length from the
// input, its bytes the input's next bytes, cut short where the input ends), flush, or count
// lost records. Every batch handed over is walked as JavaScript walks it (u32 size, bytes, zero
// padding to 8) and compared with what the script appended: same records, same order, same
// bytes, losses counted once, no batch past its size unless one record alone fills it.
#include "../src/framing.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const char *what) {
  fprintf(stderr, "framing-fuzz: %s\n", what);
  abort();
}

struct Expect {
  std::deque<std::vector<uint8_t>> records;  // appended, not yet seen in a batch
  uint64_t lost = 0;                         // counted, not yet seen in a batch
  size_t batch_bytes = 0;

  void check(ebbflow::Batch *b) {
    if (b->records == 0 && b->lost == 0) fail("empty batch handed over");
    if (b->records > 0 && (b->data == nullptr || b->size == 0)) fail("records without bytes");
    if (b->lost > lost) fail("more losses than counted");
    lost -= b->lost;
    size_t at = 0;
    for (uint32_t i = 0; i < b->records; i++) {
      if (records.empty()) fail("a record that was never appended");
      if (at + 4 > b->size) fail("frame header past the batch's end");
      uint32_t size;
      memcpy(&size, b->data + at, 4);
      const std::vector<uint8_t> &want = records.front();
      if (size != want.size()) fail("frame size differs from the record's");
      size_t frame = 4 + ebbflow::round8(size);
      if (at + frame > b->size) fail("frame past the batch's end");
      if (size > 0 && memcmp(b->data + at + 4, want.data(), size) != 0) fail("record bytes differ");
      for (size_t p = at + 4 + size; p < at + frame; p++)
        if (b->data[p] != 0) fail("padding not zero");
      at += frame;
      records.pop_front();
    }
    if (at != b->size) fail("bytes after the last frame");
    if (b->size > batch_bytes && b->records > 1) fail("batch over its size with several records");
    delete b;
  }
};

size_t take_u16(const uint8_t *&p, const uint8_t *end) {
  size_t v = 0;
  if (p < end) v = *p++;
  if (p < end) v |= size_t(*p++) << 8;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data;
  const uint8_t *end = data + size;
  Expect expect;
  // 1 byte to 64 KiB: small sizes make every record its own batch, large ones many per batch.
  expect.batch_bytes = 1 + take_u16(p, end);
  ebbflow::Framer framer(expect.batch_bytes);
  auto emit = [&expect](ebbflow::Batch *b) { expect.check(b); };
  while (p < end) {
    uint8_t op = *p++;
    switch (op % 8) {
      case 0:
        framer.flush(emit);
        break;
      case 1: {
        uint64_t n = op >> 3;
        framer.lose(n);
        expect.lost += n;
        break;
      }
      default: {
        // Mostly short records, some up to 64 KiB; cut to what the input still has, so
        // truncated records too.
        size_t want = (op & 8) ? take_u16(p, end) : (p < end ? *p++ : 0);
        size_t n = std::min(want, size_t(end - p));
        expect.records.emplace_back(p, p + n);
        if (!framer.append(p, n, emit)) fail("append refused a record");
        p += n;
        break;
      }
    }
  }
  framer.flush(emit);
  if (!expect.records.empty()) fail("appended records never handed over");
  if (expect.lost != 0) fail("losses never handed over");
  if (framer.records() != 0 || framer.pending_lost() != 0) fail("framer not empty after flush");
  return 0;
}

#ifndef EBBFLOW_LIBFUZZER
// Without libFuzzer: random scripts for a bounded time. Usage: framing-fuzz SECONDS [SEED]
int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 5;
  uint64_t seed = argc > 2 ? strtoull(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t runs = 0;
  std::vector<uint8_t> input;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 64; i++) {
      input.resize(rng() % 4096);
      for (auto &b : input) b = static_cast<uint8_t>(rng());
      LLVMFuzzerTestOneInput(input.data(), input.size());
      runs++;
    }
  }
  printf("Done %llu runs in %.0f second(s)\n", static_cast<unsigned long long>(runs), seconds);
  return 0;
}
#endif
