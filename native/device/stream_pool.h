// One backend stream per (session, backend, device): work a worker submits runs in its order,
// and workers do not wait on each other's streams. A stream is used by one thread at a time.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "backend_loader.h"

namespace caphost::device {

struct Stream {
  const OpenBackend* backend;
  ch_stream* stream;
  std::mutex busy;
  ~Stream();
};

std::shared_ptr<Stream> streamFor(const std::string& token, const OpenBackend* backend, int device);
void dropStreams(const std::string& token);

// Turns a backend failure into CodedError (DEVICE_OUT_OF_MEMORY, DEVICE_ERROR, ...).
[[noreturn]] void throwStatus(const OpenBackend* backend, ch_status status, const std::string& what);
inline void check(const OpenBackend* backend, ch_status status, const std::string& what) {
  if (status != CH_OK) throwStatus(backend, status, what);
}

}  // namespace caphost::device
