// What this kernel offers the BPF objects, probed (not read off the version number): a map or
// program the kernel accepts, a helper the verifier knows, a field of the kernel's own BTF
// (what CO-RE relocates against). The collector compares it with what each event family needs
// (services/collector/src/kernel-support.ts) and refuses to start naming what is missing.
#pragma once

#include <napi.h>

namespace ebbflow {

// probeFeatures(): { ringbuf, btf, cgroupSkb, currentTaskBtf, sockCgroupPointer, bpfLoop,
// findVma, numPossibleCpus, kernelRelease }.
Napi::Value probe_features(const Napi::CallbackInfo &info);

}  // namespace ebbflow
