// Landlock: unprivileged filesystem (and, from ABI 4, TCP) restriction.
//
// landlock_restrict_self() applies to the calling thread only, and a Node process has
// threads before any user code runs (libuv's pool is started by the ESM loader itself).
// An unrestricted pool thread would serve fs.promises calls outside the sandbox, so by
// default every other thread is made to restrict itself too: a real-time signal whose
// handler calls restrict_self with the same ruleset, acknowledged thread by thread.
// Threads that block that signal cannot be reached; they are reported, never hidden.
#include "sandbox.h"

#include <cstdint>
#include <string>
#include <vector>

#include "edge.h"

#if defined(__linux__)
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "thread_broadcast.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif
#endif

namespace caphost {
namespace {

#if defined(__linux__)

// UAPI layouts spelled out here: the installed <linux/landlock.h> may predate ABI 4.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI >= 4
  uint64_t scoped;              // ABI >= 6
};
struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};
constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;

constexpr uint64_t kExecute = 1ULL << 0, kWriteFile = 1ULL << 1, kReadFile = 1ULL << 2,
                   kReadDir = 1ULL << 3, kRefer = 1ULL << 13, kTruncate = 1ULL << 14,
                   kIoctlDev = 1ULL << 15;
constexpr uint64_t kNetBindTcp = 1ULL << 0, kNetConnectTcp = 1ULL << 1;
// ABI 6 scoping: no signals to, and no connects to abstract unix sockets of, processes
// outside this Landlock domain (the controller included).
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0, kScopeSignal = 1ULL << 1;
constexpr int kAbiScoped = 6;
// Rights the kernel accepts on a rule whose path is not a directory.
constexpr uint64_t kFileRights = kExecute | kWriteFile | kReadFile | kTruncate | kIoctlDev;

int AbiVersion() {
  long v = syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  return v > 0 ? static_cast<int>(v) : 0;  // ENOSYS: not built; EOPNOTSUPP: not enabled
}

uint64_t FsRightsForAbi(int abi) {
  uint64_t r = (1ULL << 13) - 1;  // ABI 1: EXECUTE .. MAKE_SYM
  if (abi >= 2) r |= kRefer;
  if (abi >= 3) r |= kTruncate;
  if (abi >= 5) r |= kIoctlDev;
  return r;
}

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { if (fd >= 0) close(fd); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::vector<std::string> ArgPaths(Napi::Object opts, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = opts.Get(key);
  if (v.IsUndefined()) return out;
  if (!v.IsArray()) throw InvalidArgument(std::string(key) + " must be an array of strings");
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value p = arr.Get(i);
    if (!p.IsString()) throw InvalidArgument(std::string(key) + " must be an array of strings");
    out.push_back(p.As<Napi::String>().Utf8Value());
  }
  return out;
}

void AddRule(int ruleset, const std::string& path, uint64_t access,
             std::vector<std::string>& skipped) {
  Fd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
  if (fd.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      skipped.push_back(path);
      return;
    }
    throw SysError("open", "cannot open Landlock path " + path);
  }
  struct stat st;
  if (fstat(fd.fd, &st) != 0) throw SysError("fstat", "cannot inspect " + path);
  if (!S_ISDIR(st.st_mode)) access &= kFileRights;
  if (access == 0) return;  // nothing this ruleset handles could be granted here
  PathBeneathAttr attr{access, fd.fd};
  if (syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &attr, 0) != 0)
    throw SysError("landlock_add_rule", "cannot add a rule for " + path);
}

Napi::Value LandlockAbiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), AbiVersion());
}

Napi::Value LandlockRestrict(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw InvalidArgument("options must be an object");
    Napi::Object opts = info[0].As<Napi::Object>();
    std::vector<std::string> read_only = ArgPaths(opts, "readOnly");
    std::vector<std::string> read_write = ArgPaths(opts, "readWrite");
    bool deny_tcp = opts.Get("denyTcp").ToBoolean();
    bool all_threads = opts.Get("allThreads").IsUndefined() || opts.Get("allThreads").ToBoolean();

    int abi = AbiVersion();
    if (abi == 0)
      throw SandboxUnavailable(
          "Landlock is unavailable: the kernel lacks it (Linux < 5.13) or 'landlock' is "
          "not in its lsm= list");
    uint64_t known = FsRightsForAbi(abi);
    uint64_t handled = known;
    Napi::Value h = opts.Get("handledAccessFs");
    if (!h.IsUndefined()) {
      if (!h.IsNumber()) throw InvalidArgument("handledAccessFs must be a number");
      double d = h.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d < 9007199254740992.0) || std::floor(d) != d)
        throw InvalidArgument("handledAccessFs must be a non-negative integer bitmask");
      handled = static_cast<uint64_t>(d);
      // Dropping rights the kernel does not know would silently weaken the sandbox.
      if (handled & ~known)
        throw SandboxUnavailable("handledAccessFs asks for rights Landlock ABI " +
                                 std::to_string(abi) + " does not have");
    }
    if (deny_tcp && abi < 4)
      throw SandboxUnavailable("denyTcp needs Landlock ABI 4 (Linux 6.7); this kernel has ABI " +
                               std::to_string(abi));

    // Scoping is applied whenever the kernel has it. Below ABI 6 it is not an error, even
    // for a profile that requires Landlock: the result's `scoped` is 0 and the launcher
    // reports the gap (signals to same-user processes, abstract unix sockets) instead.
    uint64_t scoped = abi >= kAbiScoped ? (kScopeSignal | kScopeAbstractUnixSocket) : 0;
    RulesetAttr attr{handled, deny_tcp ? (kNetBindTcp | kNetConnectTcp) : 0, scoped};
    size_t attr_size = abi >= kAbiScoped ? sizeof(RulesetAttr)
                       : abi >= 4        ? 2 * sizeof(uint64_t)
                                         : sizeof(uint64_t);
    Fd ruleset(static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0)));
    if (ruleset.fd < 0) throw SysError("landlock_create_ruleset", "cannot create ruleset");

    std::vector<std::string> skipped;
    for (const auto& p : read_only) AddRule(ruleset.fd, p, (kExecute | kReadFile | kReadDir) & handled, skipped);
    for (const auto& p : read_write) AddRule(ruleset.fd, p, handled, skipped);

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      throw SysError("prctl(PR_SET_NO_NEW_PRIVS)", "cannot set no_new_privs");
    // Others first: the broadcast reads /proc, which the ruleset may forbid this thread.
    BroadcastResult others;
    if (all_threads) others = RestrictOtherThreads(ruleset.fd);
    if (syscall(SYS_landlock_restrict_self, ruleset.fd, 0) != 0)
      throw SysError("landlock_restrict_self", "cannot restrict the calling thread");

    Napi::Object out = Napi::Object::New(env);
    out.Set("abi", abi);
    out.Set("scoped", static_cast<double>(scoped));
    Napi::Array sk = Napi::Array::New(env, skipped.size());
    for (uint32_t i = 0; i < skipped.size(); ++i) sk.Set(i, skipped[i]);
    out.Set("skipped", sk);
    out.Set("threads", static_cast<double>(others.restricted + 1));
    Napi::Array un = Napi::Array::New(env, others.unreachable.size());
    for (uint32_t i = 0; i < others.unreachable.size(); ++i) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("tid", others.unreachable[i].tid);
      t.Set("name", others.unreachable[i].name);
      un.Set(i, t);
    }
    out.Set("unrestrictedThreads", un);
    return out;
  });
}

#else  // !__linux__

Napi::Value LandlockAbiVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), 0);
}

Napi::Value LandlockRestrict(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    throw SandboxUnavailable("Landlock exists only on Linux");
  });
}

#endif

}  // namespace

void RegisterLandlock(Napi::Env env, Napi::Object exports) {
  exports.Set("landlockAbiVersion", Napi::Function::New(env, LandlockAbiVersion));
  exports.Set("landlockRestrict", Napi::Function::New(env, LandlockRestrict));
}

}  // namespace caphost
