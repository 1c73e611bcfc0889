#include "log-capture.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace ebbflow {
namespace {

// Per thread, so that a drain thread's rare warnings never mix into a load's log.
constexpr size_t kLogKeep = 16 * 1024;
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

}  // namespace

void log_capture__install() { libbpf_set_print(libbpf_print); }

std::string take_log() {
  std::string out;
  out.swap(t_log);
  if (out.size() > kLogKeep) out.erase(0, out.size() - kLogKeep);
  return out;
}

std::string log_tail(const std::string &log, size_t max) {
  if (log.size() <= max) return log;
  size_t from = log.size() - max;
  size_t nl = log.find('\n', from);
  return "...\n" + log.substr(nl == std::string::npos ? from : nl + 1);
}

}  // namespace ebbflow
