// A socket pair between the controller and a process worker that carries messages and file
// descriptors (SCM_RIGHTS): how a worker receives exactly the device buffers it is granted.
#pragma once

#include <napi.h>

namespace caphost {
void RegisterFdPassing(Napi::Env env, Napi::Object exports);
}
