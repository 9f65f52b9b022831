// no_new_privs and seccomp-bpf, without libseccomp: the program is compiled in
// TypeScript (src/isolation) and arrives here as raw struct sock_filter bytes.
#include "sandbox.h"

#include <cstdint>
#include <string>
#include <vector>

#include "edge.h"

#if defined(__linux__)
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef SECCOMP_SET_MODE_FILTER
#define SECCOMP_SET_MODE_FILTER 1
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC 1UL
#endif
#ifndef SYS_seccomp
#if defined(__x86_64__)
#define SYS_seccomp 317
#elif defined(__aarch64__)
#define SYS_seccomp 277
#endif
#endif
#endif

namespace caphost {
namespace {

#if defined(__linux__)

void SetNoNewPrivsOrThrow() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    throw SysError("prctl(PR_SET_NO_NEW_PRIVS)", "cannot set no_new_privs");
}

// Probing with a NULL program is side-effect free: the kernel validates the flags
// (EINVAL when unknown) before it copies the program (EFAULT), and installs nothing.
bool ProbeFilterFlags(unsigned long flags) {
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, nullptr);
  return r != 0 && errno == EFAULT;
}

Napi::Value SetNoNewPrivs(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    SetNoNewPrivsOrThrow();
    return info.Env().Undefined();
  });
}

Napi::Value SeccompSupport(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);  // -1/EINVAL: kernel built without seccomp
    bool filter = mode >= 0 && ProbeFilterFlags(0);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("filter", filter);
    out.Set("tsync", filter && ProbeFilterFlags(SECCOMP_FILTER_FLAG_TSYNC));
    out.Set("mode", mode < 0 ? 0 : mode);  // 0 none, 1 strict, 2 a filter is installed
    return out;
  });
}

Napi::Value InstallSeccompFilter(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Bytes bytes = ArgBytes(info, 0, "program");
    if (bytes.length == 0 || bytes.length % 8 != 0)
      throw InvalidArgument("program must be a non-empty array of 8-byte sock_filter entries");
    size_t n = bytes.length / 8;
    if (n > BPF_MAXINSNS)
      throw InvalidArgument("program has " + std::to_string(n) + " instructions, over " +
                            std::to_string(BPF_MAXINSNS));
    // Decode explicitly (little-endian wire format) instead of casting: the input
    // need not be aligned, and the layout must not depend on the host's byte order.
    std::vector<sock_filter> prog(n);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* b = bytes.data + i * 8;
      prog[i].code = static_cast<uint16_t>(b[0] | (b[1] << 8));
      prog[i].jt = b[2];
      prog[i].jf = b[3];
      prog[i].k = static_cast<uint32_t>(b[4]) | (static_cast<uint32_t>(b[5]) << 8) |
                  (static_cast<uint32_t>(b[6]) << 16) | (static_cast<uint32_t>(b[7]) << 24);
    }
    sock_fprog fprog{static_cast<unsigned short>(n), prog.data()};
    // The kernel refuses an unprivileged filter without no_new_privs; setting it is
    // only ever a reduction of privilege, so do it rather than make every caller.
    SetNoNewPrivsOrThrow();
    // TSYNC: libuv's pool and V8's helpers already run; a filter on this thread alone
    // would leave them unfiltered.
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
    if (r > 0) {
      CodedError e("NATIVE_ERROR",
                   "seccomp TSYNC failed: thread " + std::to_string(r) +
                       " has a diverging filter; no thread was filtered");
      Napi::Error js = ToJsError(info.Env(), e);
      js.Set("threadId", Napi::Number::New(info.Env(), static_cast<double>(r)));
      throw js;
    }
    if (r != 0) throw SysError("seccomp(SECCOMP_SET_MODE_FILTER)", "cannot install filter");
    return info.Env().Undefined();
  });
}

#else  // !__linux__

Napi::Value Unavailable(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    throw SandboxUnavailable("seccomp and no_new_privs exist only on Linux");
  });
}

Napi::Value SeccompSupport(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("filter", false);
  out.Set("tsync", false);
  out.Set("mode", 0);
  return out;
}

#define SetNoNewPrivs Unavailable
#define InstallSeccompFilter Unavailable

#endif

}  // namespace

void RegisterSeccomp(Napi::Env env, Napi::Object exports) {
  exports.Set("setNoNewPrivs", Napi::Function::New(env, SetNoNewPrivs));
  exports.Set("seccompSupport", Napi::Function::New(env, SeccompSupport));
  exports.Set("installSeccompFilter", Napi::Function::New(env, InstallSeccompFilter));
}

}  // namespace caphost
