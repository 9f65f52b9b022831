// Shared memory that crosses a process boundary: the controller creates it, a process
// worker inherits the fd and maps the same pages. See shared_memory.cc.
#pragma once

#include <napi.h>

namespace caphost {
void RegisterSharedMemory(Napi::Env env, Napi::Object exports);
}
