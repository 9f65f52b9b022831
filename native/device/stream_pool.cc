#include "stream_pool.h"

#include <map>
#include <tuple>

#include "../core/edge.h"

namespace caphost::device {
namespace {

std::mutex mutex;
using Key = std::tuple<std::string, const OpenBackend*, int>;
std::map<Key, std::shared_ptr<Stream>>& streams() {
  static auto* m = new std::map<Key, std::shared_ptr<Stream>>();
  return *m;
}

}  // namespace

Stream::~Stream() {
  if (stream != nullptr) backend->api->stream_destroy(stream);
}

std::shared_ptr<Stream> streamFor(const std::string& token, const OpenBackend* backend, int device) {
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = streams()[Key{token, backend, device}];
  if (!slot) {
    ch_stream* s = nullptr;
    check(backend, backend->api->stream_create(device, &s), "cannot create a stream");
    slot = std::make_shared<Stream>();
    slot->backend = backend;
    slot->stream = s;
  }
  return slot;
}

void dropStreams(const std::string& token) {
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = streams().begin(); it != streams().end();)
    it = std::get<0>(it->first) == token ? streams().erase(it) : std::next(it);
}

void throwStatus(const OpenBackend* backend, ch_status status, const std::string& what) {
  const std::string detail = backend->api->last_error();
  const std::string message = backend->name + ": " + what + (detail.empty() ? "" : ": " + detail);
  switch (status) {
    case CH_ERR_INVALID: throw CodedError("INVALID_ARGUMENT", message);
    case CH_ERR_OUT_OF_MEMORY: throw CodedError("DEVICE_OUT_OF_MEMORY", message);
    case CH_ERR_UNAVAILABLE: throw CodedError("DEVICE_UNAVAILABLE", message);
    default: throw CodedError("DEVICE_ERROR", message);
  }
}

}  // namespace caphost::device
