// libbpf's print callback: what libbpf and the verifier say goes into the error JavaScript
// sees, not onto stderr.
#pragma once

#include <cstddef>
#include <string>

namespace ebbflow {

// Bytes of a log that an error message quotes (the full capture rides in libbpfLog).
constexpr size_t kLogInMessage = 4 * 1024;

// Routes libbpf's warnings and info lines into this thread's capture (debug lines are dropped).
void log_capture__install();

// The log this thread captured since the last call (its last 16 KiB), and a fresh start.
std::string take_log();

// The last `max` bytes of a log, cut at a line start.
std::string log_tail(const std::string &log, size_t max);

}  // namespace ebbflow
