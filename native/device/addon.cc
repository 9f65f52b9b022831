// N-API face of the device layer: backends, sessions, buffers and their handles, grants,
// views, copies and command lists. Validation and rights checks happen here, on the calling
// thread; device work runs on libuv's pool (run, write, read return promises) or, for a worker
// thread that may block, on the calling thread (runSync). C++ exceptions stop at Guard().
#include <fcntl.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/edge.h"
#include "../cpu/backend.h"
#include "backend_loader.h"
#include "command_list.h"
#include "handle_table.h"
#include "stream_pool.h"

namespace caphost::device {
namespace {

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) throw InvalidArgument(std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

int argRights(const Napi::CallbackInfo& info, size_t i) {
  const int r = static_cast<int>(ArgInteger(info, i, "rights", 1, 3));
  return r;
}

// Device work off the JS thread, settling a promise with a coded error on failure.
class DeviceWork : public Napi::AsyncWorker {
 public:
  DeviceWork(Napi::Env env, std::function<void()> body, std::vector<Napi::Value> keep)
      : Napi::AsyncWorker(env, "caphost:device"), deferred_(Napi::Promise::Deferred::New(env)), body_(std::move(body)) {
    for (auto& v : keep) {
      if (v.IsObject()) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
    }
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      body_();
    } catch (const CodedError& e) {
      code_ = e.code;
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "DEVICE_ERROR";
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = Napi::Error::New(Env(), e.Message());
    err.Set("code", Napi::String::New(Env(), code_));
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> body_;
  std::vector<Napi::ObjectReference> keep_;
  std::string code_;
};

void runList(const std::string& token, DecodedList& list) {
  if (list.ops.empty()) return;
  auto stream = streamFor(token, list.backend, list.device);
  std::lock_guard<std::mutex> lock(stream->busy);
  const ch_backend* api = list.backend->api;
  check(list.backend, api->submit(stream->stream, list.ops.data(), static_cast<uint32_t>(list.ops.size())),
        "cannot submit the command list");
  check(list.backend, api->synchronize(stream->stream), "the command list failed");
}

DecodedList decodeArgs(const Napi::CallbackInfo& info, std::string& token) {
  token = argString(info, 0, "session");
  if (info.Length() < 3 || !info[1].IsArray()) throw InvalidArgument("handles must be an array of strings");
  auto arr = info[1].As<Napi::Array>();
  std::vector<std::string> handles(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) throw InvalidArgument("handles must be an array of strings");
    handles[i] = v.As<Napi::String>().Utf8Value();
  }
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw InvalidArgument("ops must be a Float64Array");
  auto words = info[2].As<Napi::Float64Array>();
  return decodeCommandList(token, handles, words.Data(), words.ElementLength());
}

Napi::Value OpenBackendJs(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const OpenBackend& b = openBackend(argString(info, 0, "backend"));
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", b.name);
    Napi::Array devices = Napi::Array::New(env);
    for (int32_t d = 0; d < b.api->device_count(); ++d) {
      ch_device_info di{};
      check(&b, b.api->device_info(d, &di), "cannot describe device " + std::to_string(d));
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", std::string(di.name, strnlen(di.name, sizeof(di.name))));
      o.Set("totalMemory", static_cast<double>(di.total_memory));
      o.Set("hostVisible", di.host_visible != 0);
      o.Set("computeMajor", di.compute_major);
      o.Set("computeMinor", di.compute_minor);
      o.Set("threads", di.threads);
      devices.Set(static_cast<uint32_t>(d), o);
    }
    out.Set("devices", devices);
    out.Set("abi", CH_BACKEND_ABI_VERSION);
    return out;
  });
}

Napi::Value SetCpuThreads(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    caphost::cpu::setCpuThreads(static_cast<int>(ArgInteger(info, 0, "threads", 0, 256)));
    return Napi::Number::New(info.Env(), caphost::cpu::cpuThreads());
  });
}

Napi::Value NewSession(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), newSession()); });
}

// Only the main thread's event loop (the controller's) gets the controller session: a thread
// worker loads this same addon and must not be able to ask for it.
Napi::Value ControllerSession(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(info.Env(), &loop) != napi_ok || loop != uv_default_loop())
      throw CodedError("HANDLE_DENIED", "only the controller's main thread holds the controller session");
    return Napi::String::New(info.Env(), controllerSession());
  });
}

Napi::Value DropSession(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const std::string token = argString(info, 0, "session");
    dropSession(token);
    dropStreams(token);
    return info.Env().Undefined();
  });
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const std::string token = argString(info, 0, "session");
    const OpenBackend* b = findBackend(argString(info, 1, "backend"));
    if (b == nullptr) throw CodedError("DEVICE_UNAVAILABLE", "alloc: that backend is not open");
    const int device = static_cast<int>(ArgInteger(info, 2, "device", 0, b->api->device_count() - 1));
    const double bytes = ArgInteger(info, 3, "bytes", 0, 9007199254740991.0);
    ch_buffer* buf = nullptr;
    check(b, b->api->buffer_alloc(device, static_cast<uint64_t>(bytes), &buf),
          "cannot allocate " + std::to_string(static_cast<uint64_t>(bytes)) + " bytes");
    auto ref = std::make_shared<Buffer>(b, buf, static_cast<uint64_t>(bytes), device, false);
    return Napi::String::New(info.Env(), insert(token, std::move(ref)));
  });
}

struct FileMapping {
  void* data;
  size_t length;
  int fd;
};

void releaseMapping(void* context) {
  auto* m = static_cast<FileMapping*>(context);
  if (m->length > 0) munmap(m->data, m->length);
  close(m->fd);
  delete m;
}

// Weights: the file mapped copy-on-write, so a stray write (from a thread worker, which
// shares this address space) changes nothing on disk and cannot fault; process workers get
// the read-only descriptor and map it read-only.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const std::string token = argString(info, 0, "session");
    const std::string path = argString(info, 1, "path");
    const OpenBackend* cpu = findBackend("cpu");
    if (cpu == nullptr) cpu = &openBackend("cpu");
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw SysError("open", "cannot open " + path);
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      const int e = errno;
      close(fd);
      throw SysError("fstat", "cannot stat " + path, e);
    }
    const size_t length = static_cast<size_t>(st.st_size);
    void* data = nullptr;
    if (length > 0) {
      data = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        const int e = errno;
        close(fd);
        throw SysError("mmap", "cannot map " + path, e);
      }
    }
    auto* mapping = new FileMapping{data, length, fd};
    ch_buffer* buf = caphost::cpu::wrapHostMemory(data, length, fd, releaseMapping, mapping);
    auto ref = std::make_shared<Buffer>(cpu, buf, static_cast<uint64_t>(length), 0, true, path);
    return Napi::String::New(info.Env(), insert(token, std::move(ref)));
  });
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    release(argString(info, 0, "session"), argString(info, 1, "handle"));
    return info.Env().Undefined();
  });
}

Napi::Value Adopt(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    adopt(argString(info, 0, "session"), argString(info, 1, "handle"), argString(info, 2, "from"));
    return info.Env().Undefined();
  });
}

Napi::Value Seal(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    seal(argString(info, 0, "session"), argString(info, 1, "handle"));
    return info.Env().Undefined();
  });
}

Napi::Value Grant(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    grant(argString(info, 0, "session"), argString(info, 1, "handle"), argString(info, 2, "to"), argRights(info, 3));
    return info.Env().Undefined();
  });
}

Napi::Value Revoke(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    revoke(argString(info, 0, "session"), argString(info, 1, "handle"), argString(info, 2, "from"));
    return info.Env().Undefined();
  });
}

void finalizeView(Napi::Env, void*, BufferRef* ref) { delete ref; }

Napi::Value View(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    BufferRef b = resolve(argString(info, 0, "session"), argString(info, 1, "handle"), argRights(info, 2), "view");
    void* p = b->backend->api->buffer_host_ptr(b->buffer);
    if (p == nullptr)
      throw CodedError("DEVICE_UNAVAILABLE", "view: " + b->backend->name +
                                                 " buffers are not visible to the host; use download() to copy one out");
    const size_t length = static_cast<size_t>(b->bytes);
    // The view holds the buffer: freeing the handle cannot pull memory out from under it.
    return Napi::ArrayBuffer::New(info.Env(), p, length, finalizeView, new BufferRef(std::move(b)));
  });
}

// Whether session holds `rights` on handle (throws the reason otherwise): lets a cached view
// be reused with the same checks a fresh one gets, without telling V8 about its memory again.
Napi::Value Check(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    BufferRef b = resolve(argString(info, 0, "session"), argString(info, 1, "handle"), argRights(info, 2), "view");
    return Napi::Number::New(info.Env(), static_cast<double>(b->bytes));
  });
}

Napi::Value ShareFd(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const int rights = argRights(info, 2);
    BufferRef b = resolve(argString(info, 0, "session"), argString(info, 1, "handle"), rights, "share");
    const int fd = b->backend->api->buffer_share_fd != nullptr ? b->backend->api->buffer_share_fd(b->buffer) : -1;
    if (fd < 0)
      throw CodedError("DEVICE_UNAVAILABLE", "share: " + b->backend->name + " buffers cannot be shared with a process worker");
    int out = -1;
    if ((rights & kWrite) != 0) {
      out = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    } else if (!b->path.empty()) {
      out = fcntl(fd, F_DUPFD_CLOEXEC, 0);  // the weights' descriptor is read-only already
    } else {
      // A fresh read-only open of the memfd: the receiver cannot map it writable.
      const std::string self = "/proc/self/fd/" + std::to_string(fd);
      out = open(self.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (out < 0) throw SysError("open", "share: cannot make a descriptor for the buffer");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("fd", out);
    o.Set("bytes", static_cast<double>(b->bytes));
    return o;
  });
}

// write(session, handle, byteOffset, source) / read(session, handle, byteOffset, target)
Napi::Value Copy(const Napi::CallbackInfo& info, bool toDevice) {
  return Guard(info, [&]() -> Napi::Value {
    const std::string token = argString(info, 0, "session");
    BufferRef b = resolve(token, argString(info, 1, "handle"), toDevice ? kWrite : kRead, toDevice ? "upload" : "download");
    const double offset = ArgInteger(info, 2, "byteOffset", 0, 9007199254740991.0);
    Bytes bytes = ArgBytes(info, 3, toDevice ? "source" : "target");
    if (static_cast<uint64_t>(offset) + bytes.length > b->bytes)
      throw CodedError("HANDLE_INVALID", std::string(toDevice ? "upload" : "download") + ": " + std::to_string(bytes.length) +
                                             " bytes at offset " + std::to_string(static_cast<uint64_t>(offset)) +
                                             " reach beyond the buffer's " + std::to_string(b->bytes));
    const bool sync = info.Length() > 4 && info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
    auto body = [token, b, bytes, offset, toDevice]() {
      auto stream = streamFor(token, b->backend, b->device);
      std::lock_guard<std::mutex> lock(stream->busy);
      const ch_backend* api = b->backend->api;
      const ch_status st = toDevice ? api->copy_to_device(stream->stream, b->buffer, static_cast<uint64_t>(offset), bytes.data, bytes.length)
                                    : api->copy_to_host(stream->stream, bytes.data, b->buffer, static_cast<uint64_t>(offset), bytes.length);
      check(b->backend, st, toDevice ? "upload failed" : "download failed");
      check(b->backend, api->synchronize(stream->stream), toDevice ? "upload failed" : "download failed");
    };
    if (sync) {
      body();
      return info.Env().Undefined();
    }
    auto* work = new DeviceWork(info.Env(), body, {bytes.holder});
    Napi::Promise p = work->promise();
    work->Queue();
    return p;
  });
}

Napi::Value Write(const Napi::CallbackInfo& info) { return Copy(info, true); }
Napi::Value Read(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value Run(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string token;
    auto list = std::make_shared<DecodedList>(decodeArgs(info, token));
    auto* work = new DeviceWork(info.Env(), [token, list]() { runList(token, *list); }, {});
    Napi::Promise p = work->promise();
    work->Queue();
    return p;
  });
}

Napi::Value RunSync(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    std::string token;
    DecodedList list = decodeArgs(info, token);
    runList(token, list);
    return info.Env().Undefined();
  });
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    const TableStats s = stats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("handles", static_cast<double>(s.handles));
    o.Set("bytes", static_cast<double>(s.bytes));
    return o;
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openBackend", Napi::Function::New(env, OpenBackendJs));
  exports.Set("setCpuThreads", Napi::Function::New(env, SetCpuThreads));
  exports.Set("newSession", Napi::Function::New(env, NewSession));
  exports.Set("controllerSession", Napi::Function::New(env, ControllerSession));
  exports.Set("dropSession", Napi::Function::New(env, DropSession));
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("adopt", Napi::Function::New(env, Adopt));
  exports.Set("seal", Napi::Function::New(env, Seal));
  exports.Set("grant", Napi::Function::New(env, Grant));
  exports.Set("revoke", Napi::Function::New(env, Revoke));
  exports.Set("view", Napi::Function::New(env, View));
  exports.Set("check", Napi::Function::New(env, Check));
  exports.Set("shareFd", Napi::Function::New(env, ShareFd));
  exports.Set("write", Napi::Function::New(env, Write));
  exports.Set("read", Napi::Function::New(env, Read));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("runSync", Napi::Function::New(env, RunSync));
  exports.Set("stats", Napi::Function::New(env, Stats));
  exports.Set("opWords", kOpWords);
  return exports;
}

}  // namespace
}  // namespace caphost::device

static Napi::Object InitDevice(Napi::Env env, Napi::Object exports) { return caphost::device::Init(env, exports); }

NODE_API_MODULE(caphost_device, InitDevice)
