// One BPF object file behind JavaScript, in libbpf's order: open -> set globals / map sizes ->
// load -> attach -> open ring buffers -> close. Owns the links and the drains; map
// access goes through maps.h, the drain threads through drain.h.
//
// A BpfObject dropped without close() is closed by its finalizer (batches still queued are
// then dropped, as no JavaScript may run there).
#pragma once

#include <napi.h>

#include "drain.h"

#include <bpf/libbpf.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ebbflow {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new BpfObject(path): bpf_object__open_file.
  explicit BpfObject(const Napi::CallbackInfo &info);

  // The finalizer: JavaScript dropped the object without close(). No JavaScript may run here,
  // so batches still queued are dropped.
  ~BpfObject() override { Teardown(nullptr); }

 private:
  napi_env env_;
  std::string path_;
  bpf_object *obj_ = nullptr;
  bool loaded_ = false;
  bool closed_ = false;
  std::vector<bpf_link *> links_;
  std::vector<std::shared_ptr<Drain>> drains_;
  uint64_t closed_batches_ = 0, closed_records_ = 0, closed_bytes_ = 0, closed_lost_ = 0;

  void RequireOpen(Napi::Env env);
  void RequireLoaded(Napi::Env env, bool loaded);
  bpf_map *FindMap(Napi::Env env, const std::string &name);
  bpf_program *FindProgram(Napi::Env env, const std::string &name);
  int MapFd(Napi::Env env, bpf_map *map, const std::string &name);

  Napi::Value SetGlobal(const Napi::CallbackInfo &info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo &info);
  Napi::Value SetAutocreate(const Napi::CallbackInfo &info);
  Napi::Value SetAutoload(const Napi::CallbackInfo &info);
  Napi::Value Load(const Napi::CallbackInfo &info);
  Napi::Value Programs(const Napi::CallbackInfo &info);
  Napi::Value Maps(const Napi::CallbackInfo &info);
  Napi::Value Attach(const Napi::CallbackInfo &info);
  Napi::Value OpenRingBuffer(const Napi::CallbackInfo &info);
  Napi::Value MapDump(const Napi::CallbackInfo &info);
  Napi::Value MapLookup(const Napi::CallbackInfo &info);
  Napi::Value MapUpdate(const Napi::CallbackInfo &info);
  Napi::Value MapDelete(const Napi::CallbackInfo &info);
  Napi::Value Stats(const Napi::CallbackInfo &info);
  Napi::Value Close(const Napi::CallbackInfo &info);
  // With `errors` (close()): batches go to JavaScript. Without (the finalizer): dropped.
  void Teardown(std::optional<Napi::Error> *errors);
};

}  // namespace ebbflow
