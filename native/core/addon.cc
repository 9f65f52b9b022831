// Entry point of caphost_core: each concern registers its functions here.
#include <dlfcn.h>
#include <napi.h>

#include "fd_passing.h"
#include "futex.h"
#include "sandbox.h"
#include "shared_memory.h"

namespace {

// futexWaitAsync threads and the Landlock broadcast's signal handler run this
// library's code outside any env. When the last env that loaded the addon goes (a
// worker_thread ending), Node dlclose()s it; that code would vanish under them. A
// second, never-closed RTLD_NODELETE handle keeps the library mapped for good.
void PinLibrary() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PinLibrary), &info) != 0 && info.dli_fname != nullptr)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
}

// Lets the CPU backend and the bench pick kernels without parsing /proc/cpuinfo.
Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  bool avx2 = false, fma = false, avx512f = false, neon = false;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  avx2 = __builtin_cpu_supports("avx2");
  fma = __builtin_cpu_supports("fma");
  avx512f = __builtin_cpu_supports("avx512f");
#elif defined(__aarch64__) || defined(__ARM_NEON)
  neon = true;  // mandatory in AArch64
#endif
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("avx2", avx2);
  out.Set("fma", fma);
  out.Set("avx512f", avx512f);
  out.Set("neon", neon);
  return out;
}

}  // namespace

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PinLibrary();
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  caphost::RegisterSharedMemory(env, exports);
  caphost::RegisterFdPassing(env, exports);
  caphost::RegisterFutex(env, exports);
  caphost::RegisterSeccomp(env, exports);
  caphost::RegisterLandlock(env, exports);
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  return exports;
}

NODE_API_MODULE(caphost_core, Init)
