// Errors as JavaScript sees them: an Error whose message names the operation, the errno and,
// where the kernel refused, why in words (a missing capability, missing kernel BTF), with
// `code` (the errno name), `errno` and `libbpfLog` set: the shape index.ts's NativeError wraps.
#pragma once

#include <napi.h>

#include <string>

namespace ebbflow {

constexpr const char *kVmlinuxBtf = "/sys/kernel/btf/vmlinux";

std::string errno_name(int err);
std::string errno_text(int err);

// What the refused operation needed, for eperm_hint.
enum class Need { Load, Attach, Cgroup };

// Why the kernel said EPERM, in words: which capability this process lacks, or that it lacks
// none and the refusal has another cause.
std::string eperm_hint(Need need);

// Empty where the kernel's BTF is readable; otherwise why CO-RE objects cannot load.
std::string btf_hint();

[[noreturn]] void throw_native(Napi::Env env, const std::string &what, int err, const std::string &log = "",
                               const std::string &hint = "");

[[noreturn]] void throw_type(Napi::Env env, const std::string &message);

}  // namespace ebbflow
