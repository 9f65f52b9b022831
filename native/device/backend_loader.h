// Finds and opens device backends: the CPU backend linked into this addon, or a backend
// library (CUDA, Metal) loaded on demand with dlopen, so that the package loads on machines
// without a GPU toolkit. A library built against another ABI revision is refused.
#pragma once

#include <string>

#include "../include/caphost_backend.h"

namespace caphost::device {

struct OpenBackend {
  const ch_backend* api;
  std::string name;
  std::string path;  // "" for the built-in CPU backend
};

// "cpu" → the built-in backend; anything else is a library path. Throws CodedError
// DEVICE_UNAVAILABLE with the reason (missing library, missing symbol, ABI mismatch, or the
// backend's own init() reason: no driver, no device, driver too old).
const OpenBackend& openBackend(const std::string& nameOrPath);
// nullptr when not open.
const OpenBackend* findBackend(const std::string& name);

}  // namespace caphost::device
