// The process-wide table of device buffers. A handle is 128 random bits (hex), so a worker
// cannot guess one; what a party may do with it is decided here, per session token, for every
// use: the owner and the controller (controllerSession(), main thread only) hold both
// rights, anyone else only the rights granted to its token. Buffers are reference counted:
// freeing a handle ends its use at once, and the memory goes when the last run or view that
// still holds it lets go.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../include/caphost_backend.h"
#include "backend_loader.h"

namespace caphost::device {

enum Rights : int { kRead = 1, kWrite = 2 };

struct Buffer {
  const OpenBackend* backend;
  ch_buffer* buffer;
  std::uint64_t bytes;
  int device;
  bool readOnly;  // weights: nobody may be granted write
  std::string path;  // the file behind a mapped buffer, "" otherwise
  Buffer(const OpenBackend* b, ch_buffer* buf, std::uint64_t n, int dev, bool ro, std::string p = {})
      : backend(b), buffer(buf), bytes(n), device(dev), readOnly(ro), path(std::move(p)) {}
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

using BufferRef = std::shared_ptr<Buffer>;

// A fresh worker session (no rights until granted).
std::string newSession();
// The controller's session, made on first use: it holds every right on every buffer.
std::string controllerSession();
bool isController(const std::string& token);

std::string insert(const std::string& owner, BufferRef buffer);
// The buffer if token holds `rights` on handle, else throws HANDLE_INVALID (unknown or freed)
// or HANDLE_DENIED (no grant, or not those rights), naming `what` (the operand).
BufferRef resolve(const std::string& token, const std::string& handle, int rights, const std::string& what);
void grant(const std::string& token, const std::string& handle, const std::string& to, int rights);
void revoke(const std::string& token, const std::string& handle, const std::string& from);
// Ends a session (a worker that stopped): removes the grants it held and frees the buffers it
// still owned (those it allocated and never handed over).
void dropSession(const std::string& token);
// The controller takes over a buffer a worker returned in a call's output: the buffer becomes
// the controller's if `from` owned it; otherwise `from` must at least hold read on it (a worker
// may return a tensor it was given, not one it never saw).
void adopt(const std::string& token, const std::string& handle, const std::string& from);
void release(const std::string& token, const std::string& handle);
// Makes a buffer read-only for good (weights uploaded to a device); owner or controller only.
void seal(const std::string& token, const std::string& handle);

struct TableStats {
  std::uint64_t handles;
  std::uint64_t bytes;
};
TableStats stats();

}  // namespace caphost::device
