// Shared memory for process workers.
//
// Linux: a memfd. It has no name in any filesystem, so a sandboxed child can only reach
// it through the fd it inherits (spawn's stdio array dup2()s it into the child, which
// clears close-on-exec on the child's copy; the controller's own fd stays CLOEXEC so it
// does not leak into unrelated children).
// macOS: a POSIX shm object, unlinked straight after opening for the same reason.
//
// The mapping is exposed as an external ArrayBuffer whose finalizer munmap()s it: JS
// owns the lifetime of the view, the caller owns the fd (closeFd).
#include "shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "edge.h"

namespace caphost {
namespace {

// 2^48 bytes is beyond any real ring or buffer and keeps byte counts exact in doubles.
constexpr double kMaxBytes = 281474976710656.0;

int CreateAnonymousFd(const std::string& name, size_t size) {
#if defined(__linux__)
  std::string label = "caphost:" + name.substr(0, 200);
  int fd = memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw SysError("memfd_create", "cannot create shared memory");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    CodedError e = SysError("ftruncate", "cannot size shared memory");
    close(fd);
    throw e;
  }
  // The child is untrusted: if it could shrink the file, the controller's next access
  // past the new end would SIGBUS and take the whole node down. Seal the size for good.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    CodedError e = SysError("fcntl(F_ADD_SEALS)", "cannot seal shared memory size");
    close(fd);
    throw e;
  }
  return fd;
#elif defined(__APPLE__)
  (void)name;  // shm names are limited to 31 bytes on macOS; the label is not kept
  static std::atomic<unsigned> counter{0};
  std::string shm_name = "/caphost." + std::to_string(getpid()) + "." +
                         std::to_string(counter.fetch_add(1));
  int fd = shm_open(shm_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw SysError("shm_open", "cannot create shared memory");
  shm_unlink(shm_name.c_str());  // no name left for anyone else to open
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    CodedError e = SysError("ftruncate", "cannot size shared memory");
    close(fd);
    throw e;
  }
  return fd;
#else
  (void)name;
  (void)size;
  throw CodedError("NATIVE_ERROR", "shared memory is not implemented on this platform");
#endif
}

Napi::ArrayBuffer MapFd(Napi::Env env, int fd, size_t size, bool readOnly = false) {
  void* p = mmap(nullptr, size, readOnly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw SysError("mmap", "cannot map shared memory");
  return Napi::ArrayBuffer::New(
      env, p, size, [](Napi::Env, void* data, size_t* len) {
        munmap(data, *len);
        delete len;
      },
      new size_t(size));
}

Napi::Value CreateSharedMemory(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto size = static_cast<size_t>(ArgInteger(info, 0, "byteLength", 1, kMaxBytes));
    std::string name = "shm";
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsString()) throw InvalidArgument("name must be a string");
      name = info[1].As<Napi::String>().Utf8Value();
    }
    int fd = CreateAnonymousFd(name, size);
    Napi::ArrayBuffer buffer;
    try {
      buffer = MapFd(info.Env(), fd, size);
    } catch (...) {
      close(fd);
      throw;
    }
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("fd", Napi::Number::New(info.Env(), fd));
    result.Set("buffer", buffer);
    return result;
  });
}

Napi::Value MapSharedMemory(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    int fd = ArgFd(info, 0);
    auto size = static_cast<size_t>(ArgInteger(info, 1, "byteLength", 1, kMaxBytes));
    // Mapping past the end of the file would map pages whose first touch is a SIGBUS.
    struct stat st;
    if (fstat(fd, &st) != 0) throw SysError("fstat", "cannot inspect fd " + std::to_string(fd));
    if (static_cast<uint64_t>(st.st_size) < size)
      throw InvalidArgument("fd " + std::to_string(fd) + " holds " +
                            std::to_string(st.st_size) + " bytes, fewer than byteLength " +
                            std::to_string(size));
    // readOnly: the fd may be open for reading only (a read grant); a write through the
    // mapping faults in this process, which is what a read grant means.
    const bool readOnly = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    return MapFd(info.Env(), fd, size, readOnly);
  });
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    int fd = ArgFd(info, 0);
    // Linux and macOS both release the fd even when close() reports EINTR; retrying
    // could close an fd another thread has just been given.
    if (close(fd) != 0 && errno != EINTR) throw SysError("close", "cannot close fd");
    return info.Env().Undefined();
  });
}

Napi::Value ClearCloexec(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    int fd = ArgFd(info, 0);
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0)
      throw SysError("fcntl(F_SETFD)", "cannot clear close-on-exec");
    return info.Env().Undefined();
  });
}

}  // namespace

void RegisterSharedMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("createSharedMemory", Napi::Function::New(env, CreateSharedMemory));
  exports.Set("mapSharedMemory", Napi::Function::New(env, MapSharedMemory));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("clearCloexec", Napi::Function::New(env, ClearCloexec));
}

}  // namespace caphost
