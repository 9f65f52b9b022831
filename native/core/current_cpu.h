// The CPU the calling thread runs on, for hand-offs that must not spin against their peer.
#pragma once

#include <napi.h>

namespace caphost {
void RegisterCurrentCpu(Napi::Env env, Napi::Object exports);
}
