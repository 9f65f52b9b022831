// Cross-process wait/wake on a 32-bit word of shared memory.
//
// Atomics.wait only parks on SharedArrayBuffers within one process; rings shared with a
// process worker need the kernel's shared futex (keyed by the page, not the address
// space), so FUTEX_PRIVATE_FLAG must never be used here. The async variant parks on a
// dedicated thread rather than the libuv pool: a controller keeps one wait per worker
// pending for as long as the worker lives, and four of those would starve fs and dns.
#include "futex.h"

#include <climits>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <sched.h>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__APPLE__)
#if __has_include(<os/os_sync_wait_on_address.h>)
#include <os/os_sync_wait_on_address.h>
#define CAPHOST_HAVE_OS_SYNC 1
#endif
#include <mach/mach_time.h>
// Private but stable since macOS 10.12; the fallback when os_sync_* (14.4+) is absent.
extern "C" int __ulock_wait(uint32_t op, void* addr, uint64_t value, uint32_t timeout_us);
extern "C" int __ulock_wake(uint32_t op, void* addr, uint64_t wake_value);
#define CAPHOST_UL_COMPARE_AND_WAIT_SHARED 3
#define CAPHOST_ULF_WAKE_ALL 0x00000100
#endif

#include "edge.h"

namespace caphost {
namespace {

enum class WaitResult { kOk, kNotEqual, kTimedOut };

const char* ResultName(WaitResult r) {
  switch (r) {
    case WaitResult::kOk: return "ok";
    case WaitResult::kNotEqual: return "not-equal";
    case WaitResult::kTimedOut: return "timed-out";
  }
  return "ok";
}

// Waits longer than this are treated as unbounded; it also keeps timespec math exact.
constexpr double kForeverMs = 1e12;

// Runs on any thread: no N-API in here. timeout_ms < 0 means no timeout.
WaitResult WaitOn(int32_t* addr, int32_t expected, double timeout_ms) {
#if defined(__linux__)
  // An absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET) lets EINTR retries resume
  // without the timeout drifting.
  timespec deadline{};
  bool bounded = timeout_ms >= 0;
  if (bounded) {
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    auto ns = static_cast<int64_t>(timeout_ms * 1e6);
    deadline.tv_sec += static_cast<time_t>(ns / 1000000000);
    deadline.tv_nsec += static_cast<long>(ns % 1000000000);
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000;
    }
  }
  for (;;) {
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, bounded ? &deadline : nullptr,
                     nullptr, FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return WaitResult::kOk;
    if (errno == EAGAIN) return WaitResult::kNotEqual;
    if (errno == ETIMEDOUT) return WaitResult::kTimedOut;
    if (errno != EINTR) throw SysError("futex(FUTEX_WAIT_BITSET)", "cannot wait");
  }
#elif defined(__APPLE__)
  // Neither primitive reports a value mismatch, so check first; a change that races in
  // after the check makes the kernel return at once, which callers see as a wake-up.
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected) return WaitResult::kNotEqual;
  for (;;) {
    int r;
#ifdef CAPHOST_HAVE_OS_SYNC
    if (__builtin_available(macOS 14.4, *)) {
      r = timeout_ms < 0
              ? os_sync_wait_on_address(addr, static_cast<uint32_t>(expected), 4,
                                        OS_SYNC_WAIT_ON_ADDRESS_SHARED)
              : os_sync_wait_on_address_with_timeout(
                    addr, static_cast<uint32_t>(expected), 4, OS_SYNC_WAIT_ON_ADDRESS_SHARED,
                    OS_CLOCK_MACH_ABSOLUTE_TIME, static_cast<uint64_t>(timeout_ms * 1e6));
    } else
#endif
    {
      // __ulock_wait counts microseconds in 32 bits and treats 0 as "forever".
      double us = timeout_ms * 1000.0;
      uint32_t t = timeout_ms < 0 ? 0 : (us >= 4294967295.0 ? 0xffffffffu : (us < 1 ? 1 : static_cast<uint32_t>(us)));
      r = __ulock_wait(CAPHOST_UL_COMPARE_AND_WAIT_SHARED, addr,
                       static_cast<uint32_t>(expected), t);
    }
    if (r >= 0) return WaitResult::kOk;
    if (errno == ETIMEDOUT) return WaitResult::kTimedOut;
    if (errno != EINTR) throw SysError("wait_on_address", "cannot wait");
  }
#else
  (void)addr; (void)expected; (void)timeout_ms;
  throw CodedError("NATIVE_ERROR", "futex wait is not implemented on this platform");
#endif
}

int WakeOn(int32_t* addr, int count) {
#if defined(__linux__)
  long r = syscall(SYS_futex, addr, FUTEX_WAKE, count, nullptr, nullptr, 0);
  if (r < 0) throw SysError("futex(FUTEX_WAKE)", "cannot wake");
  return static_cast<int>(r);
#elif defined(__APPLE__)
  // macOS does not say how many it woke; wake one at a time until nobody is left so
  // the count is still meaningful. ENOENT means "no waiter".
  int woken = 0;
  for (; woken < count; ++woken) {
    int r;
#ifdef CAPHOST_HAVE_OS_SYNC
    if (__builtin_available(macOS 14.4, *)) {
      r = os_sync_wake_by_address_any(addr, 4, OS_SYNC_WAKE_BY_ADDRESS_SHARED);
    } else
#endif
    {
      r = __ulock_wake(CAPHOST_UL_COMPARE_AND_WAIT_SHARED, addr, 0);
    }
    if (r < 0) {
      if (errno == ENOENT) break;
      throw SysError("wake_by_address", "cannot wake");
    }
  }
  return woken;
#else
  (void)addr; (void)count;
  throw CodedError("NATIVE_ERROR", "futex wake is not implemented on this platform");
#endif
}

struct Target {
  int32_t* addr;
  Napi::Object holder;
};

Target ArgTarget(const Napi::CallbackInfo& info) {
  Bytes bytes = ArgBytes(info, 0, "buffer");
  auto offset = static_cast<size_t>(ArgInteger(info, 1, "byteOffset", 0, 9007199254740991.0));
  if (offset % 4 != 0) throw InvalidArgument("byteOffset must be a multiple of 4");
  if (bytes.length < 4 || offset > bytes.length - 4)
    throw InvalidArgument("byteOffset " + std::to_string(offset) + " is out of bounds for " +
                          std::to_string(bytes.length) + " bytes");
  uint8_t* p = bytes.data + offset;
  if (reinterpret_cast<uintptr_t>(p) % 4 != 0)
    throw InvalidArgument("the view's byteOffset leaves the word misaligned");
  return {reinterpret_cast<int32_t*>(p), bytes.holder};
}

// Int32Array values are signed, but callers may hand us a uint32 bit pattern.
int32_t ArgExpected(const Napi::CallbackInfo& info) {
  return static_cast<int32_t>(
      static_cast<uint32_t>(static_cast<int64_t>(ArgInteger(info, 2, "expected", INT32_MIN, UINT32_MAX))));
}

// undefined or Infinity: no timeout (returns -1).
double ArgTimeout(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return -1;
  if (!info[i].IsNumber()) throw InvalidArgument("timeoutMs must be a number");
  double t = info[i].As<Napi::Number>().DoubleValue();
  if (std::isnan(t) || t < 0) throw InvalidArgument("timeoutMs must be >= 0 or Infinity");
  return t >= kForeverMs ? -1 : t;
}

Napi::Value FutexWait(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Target t = ArgTarget(info);
    int32_t expected = ArgExpected(info);
    WaitResult r = WaitOn(t.addr, expected, ArgTimeout(info, 3));
    return Napi::String::New(info.Env(), ResultName(r));
  });
}

Napi::Value FutexWake(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Target t = ArgTarget(info);
    int count = INT_MAX;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsNumber()) throw InvalidArgument("count must be a number");
      double c = info[2].As<Napi::Number>().DoubleValue();
      if (std::isnan(c) || c < 0) throw InvalidArgument("count must be >= 0 or Infinity");
      if (c < INT_MAX) count = static_cast<int>(c);
    }
    return Napi::Number::New(info.Env(), WakeOn(t.addr, count));
  });
}

// One pending futexWaitAsync, shared by its waiting thread and its thread-safe
// function. When a worker_thread's env is torn down, Node frees a TSFN whether or not
// threads still hold it, so the thread may only touch the TSFN under `m` while `alive`;
// the TSFN's finalizer clears `alive` under the same lock before the TSFN is freed.
struct AsyncWait {
  int32_t* addr;
  int32_t expected;
  double timeout_ms;
  napi_ref holder = nullptr;  // keeps the mapping alive (not munmapped) while we sleep
  napi_deferred deferred = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::mutex m;
  bool alive = true;
  WaitResult result = WaitResult::kOk;
  bool failed = false;
  CodedError error{"NATIVE_ERROR", ""};
};

// On the JS thread, once per wait. env is null when Node is emptying the queue during
// teardown; `data` may already be freed then, so it must not be touched.
void Settle(napi_env env, napi_value, void*, void* data) {
  if (env == nullptr) return;
  auto* w = static_cast<AsyncWait*>(data);
  Napi::HandleScope scope(env);
  if (w->failed) napi_reject_deferred(env, w->deferred, ToJsError(env, w->error).Value());
  else napi_resolve_deferred(env, w->deferred, Napi::String::New(env, ResultName(w->result)));
  napi_delete_reference(env, w->holder);
}

void FinalizeWait(napi_env, void* data, void*) {
  auto* owner = static_cast<std::shared_ptr<AsyncWait>*>(data);
  {
    std::lock_guard<std::mutex> lock((*owner)->m);
    (*owner)->alive = false;
  }
  delete owner;
}

void RunWait(std::shared_ptr<AsyncWait> w) {
  try {
    w->result = WaitOn(w->addr, w->expected, w->timeout_ms);
  } catch (const CodedError& e) {
    w->failed = true;
    w->error = e;
  }
  std::lock_guard<std::mutex> lock(w->m);
  if (!w->alive) return;
  // napi_closing: the env is going away and has already dropped this thread's count.
  if (napi_call_threadsafe_function(w->tsfn, w.get(), napi_tsfn_nonblocking) == napi_ok)
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
}

Napi::Value FutexWaitAsync(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Target t = ArgTarget(info);
    auto w = std::make_shared<AsyncWait>();
    w->addr = t.addr;
    w->expected = ArgExpected(info);
    w->timeout_ms = ArgTimeout(info, 3);
    napi_value promise, name;
    if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
        napi_create_reference(env, t.holder, 1, &w->holder) != napi_ok ||
        napi_create_string_utf8(env, "caphost.futexWaitAsync", NAPI_AUTO_LENGTH, &name) != napi_ok)
      throw CodedError("NATIVE_ERROR", "cannot set up futexWaitAsync");
    auto* owner = new std::shared_ptr<AsyncWait>(w);
    if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, owner, FinalizeWait,
                                        nullptr, Settle, &w->tsfn) != napi_ok) {
      delete owner;
      napi_delete_reference(env, w->holder);
      throw CodedError("NATIVE_ERROR", "cannot create the futexWaitAsync callback");
    }
    try {
      std::thread(RunWait, w).detach();
    } catch (const std::system_error& e) {
      napi_delete_reference(env, w->holder);
      napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
      throw CodedError("NATIVE_ERROR", std::string("cannot start a wait thread: ") + e.what());
    }
    return Napi::Value(env, promise);
  });
}

// Lets another runnable thread of this CPU's run queue go first; returns at once when there is
// none. Spinners call it so that a thread woken onto their CPU does not wait out their time slice.
Napi::Value YieldCpu(const Napi::CallbackInfo& info) {
  sched_yield();
  return info.Env().Undefined();
}

}  // namespace

void RegisterFutex(Napi::Env env, Napi::Object exports) {
  exports.Set("yieldCpu", Napi::Function::New(env, YieldCpu));
  exports.Set("futexWait", Napi::Function::New(env, FutexWait));
  exports.Set("futexWake", Napi::Function::New(env, FutexWake));
  exports.Set("futexWaitAsync", Napi::Function::New(env, FutexWaitAsync));
}

}  // namespace caphost
