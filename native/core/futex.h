// Cross-process wait/wake on a 32-bit word in shared memory. See futex.cc.
#pragma once

#include <napi.h>

namespace caphost {
void RegisterFutex(Napi::Env env, Napi::Object exports);
}
