#include "handle_table.h"

#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include "../core/edge.h"

namespace caphost::device {
namespace {

struct Entry {
  BufferRef buffer;
  std::string owner;
  std::unordered_map<std::string, int> grants;
};

std::mutex mutex;
std::unordered_map<std::string, Entry>& table() {
  static auto* t = new std::unordered_map<std::string, Entry>();
  return *t;
}
std::string controllerToken;

std::string randomId() {
  static std::random_device device;
  static std::mt19937_64 fallback(device());
  std::uint64_t words[2];
  // random_device reads the kernel's CSPRNG on Linux and macOS.
  words[0] = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  words[1] = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  static const char* hex = "0123456789abcdef";
  std::string s(32, '0');
  for (int i = 0; i < 32; ++i) s[i] = hex[(words[i / 16] >> ((i % 16) * 4)) & 15];
  return s;
}

std::string rightsText(int r) { return r == (kRead | kWrite) ? "read and write" : r == kWrite ? "write" : "read"; }

Entry& find(const std::string& handle, const std::string& what) {
  auto it = table().find(handle);
  if (it == table().end())
    throw CodedError("HANDLE_INVALID", what + ": handle " + handle.substr(0, 8) +
                                           "… is not a live device buffer (never allocated, or already freed)");
  return it->second;
}

int rightsOf(const Entry& e, const std::string& token) {
  if (token == e.owner || (!controllerToken.empty() && token == controllerToken)) return kRead | kWrite;
  auto g = e.grants.find(token);
  return g == e.grants.end() ? 0 : g->second;
}

}  // namespace

Buffer::~Buffer() {
  if (buffer != nullptr) backend->api->buffer_free(buffer);
}

std::string newSession() { return randomId(); }

std::string controllerSession() {
  std::string fresh = randomId();
  std::lock_guard<std::mutex> lock(mutex);
  if (controllerToken.empty()) controllerToken = fresh;
  return controllerToken;
}

bool isController(const std::string& token) {
  std::lock_guard<std::mutex> lock(mutex);
  return !controllerToken.empty() && token == controllerToken;
}

std::string insert(const std::string& owner, BufferRef buffer) {
  std::string id = randomId();
  std::lock_guard<std::mutex> lock(mutex);
  table().emplace(id, Entry{std::move(buffer), owner, {}});
  return id;
}

BufferRef resolve(const std::string& token, const std::string& handle, int rights, const std::string& what) {
  std::lock_guard<std::mutex> lock(mutex);
  Entry& e = find(handle, what);
  if ((rights & kWrite) && e.buffer->readOnly)
    throw CodedError("HANDLE_DENIED", what + ": buffer " + handle.substr(0, 8) + "… is read-only");
  const int held = rightsOf(e, token);
  if ((held & rights) != rights)
    throw CodedError("HANDLE_DENIED", what + ": this worker holds " + (held == 0 ? "no grant" : rightsText(held) + " rights") +
                                          " on buffer " + handle.substr(0, 8) + "…, and needs " + rightsText(rights));
  return e.buffer;
}

void grant(const std::string& token, const std::string& handle, const std::string& to, int rights) {
  std::lock_guard<std::mutex> lock(mutex);
  Entry& e = find(handle, "grant");
  if ((rights & kWrite) && e.buffer->readOnly)
    throw CodedError("HANDLE_DENIED", "grant: buffer " + handle.substr(0, 8) + "… is read-only; grant it for read");
  // Grants do not propagate: a worker holding a grant cannot hand the buffer on.
  if (token != e.owner && token != controllerToken)
    throw CodedError("HANDLE_DENIED", "grant: only the buffer's owner or the controller may grant it");
  e.grants[to] |= rights;
}

void revoke(const std::string& token, const std::string& handle, const std::string& from) {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = table().find(handle);
  if (it == table().end()) return;  // freed already: nothing left to revoke
  if (rightsOf(it->second, token) == 0) throw CodedError("HANDLE_DENIED", "revoke: this session holds no rights on the buffer");
  it->second.grants.erase(from);
}

void dropSession(const std::string& token) {
  std::vector<BufferRef> orphans;  // freed outside the lock
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = table().begin(); it != table().end();) {
    it->second.grants.erase(token);
    if (it->second.owner == token && token != controllerToken) {
      orphans.push_back(std::move(it->second.buffer));
      it = table().erase(it);
    } else {
      ++it;
    }
  }
}

void adopt(const std::string& token, const std::string& handle, const std::string& from) {
  std::lock_guard<std::mutex> lock(mutex);
  if (token != controllerToken) throw CodedError("HANDLE_DENIED", "adopt: only the controller takes over buffers");
  Entry& e = find(handle, "output");
  if (e.owner == from) {
    e.owner = token;
    return;
  }
  if ((rightsOf(e, from) & kRead) == 0)
    throw CodedError("HANDLE_DENIED", "output: the worker returned buffer " + handle.substr(0, 8) + "…, which it holds no rights on");
}

void release(const std::string& token, const std::string& handle) {
  BufferRef last;  // freed outside the lock
  std::lock_guard<std::mutex> lock(mutex);
  auto it = table().find(handle);
  if (it == table().end())
    throw CodedError("HANDLE_INVALID", "free: handle " + handle.substr(0, 8) + "… is not a live device buffer (already freed?)");
  if (token != it->second.owner && token != controllerToken)
    throw CodedError("HANDLE_DENIED", "free: only the buffer's owner or the controller may free it");
  last = std::move(it->second.buffer);
  table().erase(it);
}

void seal(const std::string& token, const std::string& handle) {
  std::lock_guard<std::mutex> lock(mutex);
  Entry& e = find(handle, "seal");
  if (token != e.owner && token != controllerToken)
    throw CodedError("HANDLE_DENIED", "seal: only the buffer's owner or the controller may make it read-only");
  e.buffer->readOnly = true;
  for (auto& [to, rights] : e.grants) rights &= kRead;
}

TableStats stats() {
  std::lock_guard<std::mutex> lock(mutex);
  TableStats s{0, 0};
  for (auto& [id, e] : table()) {
    ++s.handles;
    s.bytes += e.buffer->bytes;
  }
  return s;
}

}  // namespace caphost::device
