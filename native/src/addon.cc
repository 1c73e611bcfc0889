// libbpf behind Node-API: the module's entry point. Each part has a file of its own:
//   bpf-object.*   BpfObject: open -> globals / map sizes -> load -> attach -> buffers -> close
//   drain.*        the drain threads: kernel buffer -> batches (framing.h) -> JavaScript
//   maps.*         map dump, lookup, update, delete
//   features.*     what the running kernel offers (probeFeatures)
//   errors.*       errno names and hints, the Error shape index.ts's NativeError wraps
//   log-capture.*  libbpf's print callback: the verifier's words go into those errors
//   napi-args.*    reading JavaScript arguments and options

#include <napi.h>

#include "bpf-object.h"
#include "errors.h"
#include "features.h"
#include "log-capture.h"

#include <bpf/libbpf.h>

#include <time.h>

namespace ebbflow {
namespace {

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
  log_capture__install();
  exports.Set("BpfObject", BpfObject::Define(env));
  exports.Set("probeFeatures", Napi::Function::New(env, probe_features));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("bootTimeNs", Napi::Function::New(env, BootTimeNs));
  return exports;
}

}  // namespace
}  // namespace ebbflow

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return ebbflow::Init(env, exports); }

NODE_API_MODULE(ebbflow_native, Init)
