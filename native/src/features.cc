#include "features.h"

#include "errors.h"
#include "log-capture.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <sys/utsname.h>
#include <unistd.h>

namespace ebbflow {
namespace {

// The helpers are probed in a tracepoint program: bpf_get_current_task_btf, bpf_find_vma and
// bpf_loop are all offered to every tracing program type, and libbpf cannot probe helpers in a
// tp_btf (BPF_PROG_TYPE_TRACING) program without a target.
bool has_helper(enum bpf_func_id helper) {
  return libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, helper, nullptr) == 1;
}

bool struct_has_member(const btf *kernel, const char *type, const char *member) {
  if (!kernel) return false;
  int id = btf__find_by_name_kind(kernel, type, BTF_KIND_STRUCT);
  if (id < 0) return false;
  const btf_type *t = btf__type_by_id(kernel, id);
  const btf_member *m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); i++)
    if (strcmp(btf__name_by_offset(kernel, m[i].name_off), member) == 0) return true;
  return false;
}

}  // namespace

Napi::Value probe_features(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  take_log();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ringbuf", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1);
  out.Set("btf", access(kVmlinuxBtf, R_OK) == 0);
  out.Set("cgroupSkb", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nullptr) == 1);
  out.Set("currentTaskBtf", has_helper(BPF_FUNC_get_current_task_btf));
  out.Set("bpfLoop", has_helper(BPF_FUNC_loop));
  out.Set("findVma", has_helper(BPF_FUNC_find_vma));
  // The net program reads a socket's cgroup through sock_cgroup_data.cgroup, a pointer since
  // 5.15 (before, a tagged u64 `val`): without it its CO-RE relocation fails at load.
  btf *kernel = btf__load_vmlinux_btf();
  out.Set("sockCgroupPointer", struct_has_member(kernel, "sock_cgroup_data", "cgroup"));
  btf__free(kernel);
  out.Set("numPossibleCpus", static_cast<double>(libbpf_num_possible_cpus()));
  utsname u{};
  uname(&u);
  out.Set("kernelRelease", u.release);
  take_log();
  return out;
}

}  // namespace ebbflow
