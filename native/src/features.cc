#include "features.h"

#include "errors.h"
#include "log-capture.h"

#include <bpf/libbpf.h>

#include <sys/utsname.h>
#include <unistd.h>

namespace ebbflow {

Napi::Value probe_features(const Napi::CallbackInfo &info) {
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

}  // namespace ebbflow
