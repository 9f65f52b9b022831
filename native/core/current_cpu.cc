// currentCpu(): where the calling thread runs now, or -1 where the OS cannot say cheaply.
//
// The rings' two sides spin briefly before they park. A spin only pays when the peer it waits for
// runs on another CPU: on the same one it keeps the peer off the CPU for the whole spin. Each side
// publishes its CPU in the channel and compares before spinning. On Linux glibc answers from the
// rseq area or the vDSO (tens of ns), so asking on every hand-off is cheap.
#include "current_cpu.h"

#if defined(__linux__)
#include <sched.h>
#endif

namespace caphost {
namespace {

Napi::Value CurrentCpu(const Napi::CallbackInfo& info) {
#if defined(__linux__)
  int cpu = sched_getcpu();
#else
  int cpu = -1;  // macOS has no public, cheap equivalent; callers then always spin as before
#endif
  return Napi::Number::New(info.Env(), cpu < 0 ? -1 : cpu);
}

}  // namespace

void RegisterCurrentCpu(Napi::Env env, Napi::Object exports) {
  exports.Set("currentCpu", Napi::Function::New(env, CurrentCpu));
}

}  // namespace caphost
