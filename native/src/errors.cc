#include "errors.h"

#include "log-capture.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace ebbflow {
namespace {

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

}  // namespace

std::string errno_name(int err) {
  if (err == 524) return "ENOTSUPP";  // kernel-internal "not supported", leaks out of bpf()
  const char *name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

std::string errno_text(int err) {
  if (err == 524) return "Operation not supported by the kernel";
  return strerror(err);
}

std::string eperm_hint(Need need) {
  uint64_t caps = effective_caps();
  auto has = [caps](int cap) { return (caps >> cap) & 1; };
  bool admin = has(kCapSysAdmin);
  std::vector<std::string> lacking;
  if (!admin && !has(kCapBpf)) lacking.push_back("CAP_BPF");
  if (!admin && !has(kCapPerfmon) && need != Need::Cgroup) lacking.push_back("CAP_PERFMON");
  if (need == Need::Cgroup && !has(kCapNetAdmin)) lacking.push_back("CAP_NET_ADMIN");
  std::string required = need == Need::Cgroup ? "root, or CAP_BPF and CAP_NET_ADMIN"
                                              : "root, or CAP_BPF and CAP_PERFMON";
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

void throw_native(Napi::Env env, const std::string &what, int err, const std::string &log, const std::string &hint) {
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

void throw_type(Napi::Env env, const std::string &message) { throw Napi::TypeError::New(env, message); }

}  // namespace ebbflow
