// Registers the op functions (addon_ops.cc) on the caphost_cpu exports.
#pragma once

#include <napi.h>

void caphostRegisterOps(Napi::Env env, Napi::Object exports);
