#include "backend_loader.h"

#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>

#include "../core/edge.h"
#include "../cpu/backend.h"

namespace caphost::device {
namespace {

std::mutex mutex;
std::map<std::string, std::unique_ptr<OpenBackend>>& byName() {
  static auto* m = new std::map<std::string, std::unique_ptr<OpenBackend>>();
  return *m;
}

CodedError unavailable(const std::string& message) { return CodedError("DEVICE_UNAVAILABLE", message); }

const ch_backend* fromLibrary(const std::string& path) {
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    throw unavailable("cannot load device backend " + path + ": " + (why != nullptr ? why : "unknown dlopen error"));
  }
  auto entry = reinterpret_cast<ch_backend_entry_fn>(dlsym(lib, CH_BACKEND_ENTRY_SYMBOL));
  if (entry == nullptr) {
    dlclose(lib);
    throw unavailable(path + " is not a caphost device backend: it does not export " CH_BACKEND_ENTRY_SYMBOL);
  }
  const ch_backend* api = entry(CH_BACKEND_ABI_VERSION);
  if (api == nullptr || api->abi_version != CH_BACKEND_ABI_VERSION || api->struct_size < sizeof(ch_backend)) {
    const std::string got = api == nullptr ? "none it could serve" : std::to_string(api->abi_version);
    dlclose(lib);
    throw unavailable(path + " was built for device ABI " + got + ", this caphost needs " +
                      std::to_string(CH_BACKEND_ABI_VERSION) + ": rebuild it (npm run build:cuda)");
  }
  // Kept loaded for the life of the process: buffers and streams point into it.
  return api;
}

}  // namespace

const OpenBackend& openBackend(const std::string& nameOrPath) {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto& [name, b] : byName())
    if (name == nameOrPath || (!b->path.empty() && b->path == nameOrPath)) return *b;
  const bool builtin = nameOrPath == "cpu";
  const ch_backend* api = builtin ? caphost::cpu::cpuBackend() : fromLibrary(nameOrPath);
  char why[512] = {0};
  const ch_status st = api->init(why, sizeof(why));
  if (st != CH_OK) {
    std::string reason = why[0] != '\0' ? why : api->last_error();
    throw unavailable(std::string(api->name) + " backend unavailable: " + (reason.empty() ? "init failed" : reason));
  }
  if (api->device_count() <= 0) throw unavailable(std::string(api->name) + " backend unavailable: no device found");
  auto b = std::make_unique<OpenBackend>(OpenBackend{api, api->name, builtin ? "" : nameOrPath});
  const OpenBackend& ref = *b;
  byName()[ref.name] = std::move(b);
  return ref;
}

const OpenBackend* findBackend(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = byName().find(name);
  return it == byName().end() ? nullptr : it->second.get();
}

}  // namespace caphost::device
