// Sandbox steps a process worker applies to itself: no_new_privs, seccomp-bpf
// (sandbox.cc) and Landlock (landlock.cc). Linux only; elsewhere the steps throw
// SANDBOX_UNAVAILABLE and the probes report "nothing available".
#pragma once

#include <napi.h>

namespace caphost {
void RegisterSeccomp(Napi::Env env, Napi::Object exports);
void RegisterLandlock(Napi::Env env, Napi::Object exports);
}
