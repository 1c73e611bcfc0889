// What this kernel offers the BPF objects, probed (not read off the version number): the
// collector compares it with what each event family needs and refuses to start with a message
// that names the feature missing.
#pragma once

#include <napi.h>

namespace ebbflow {

// probeFeatures(): { ringbuf, perfbuf, btf, cgroupSkb, numPossibleCpus, kernelRelease }.
Napi::Value probe_features(const Napi::CallbackInfo &info);

}  // namespace ebbflow
