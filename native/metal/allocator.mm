#include "allocator.h"

#include <map>
#include <memory>
#include <mutex>

namespace caphost::metal {

namespace {

constexpr std::uint64_t kMaxCachedBytes = 2ull << 30;
constexpr std::uint64_t kMinBlock = 256;

struct DevicePool {
  std::mutex mutex;
  std::map<std::uint64_t, std::vector<id<MTLBuffer>>> free;
  std::uint64_t cachedBytes = 0;
};

std::vector<std::unique_ptr<DevicePool>>& pools() {
  static std::vector<std::unique_ptr<DevicePool>> p;
  return p;
}

std::uint64_t blockSize(std::uint64_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  const int top = 63 - __builtin_clzll(bytes);
  const std::uint64_t quarter = (1ull << top) / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

}  // namespace

void Allocator::configure(int devices) {
  pools().clear();
  for (int i = 0; i < devices; ++i) pools().push_back(std::make_unique<DevicePool>());
}

ch_status Allocator::alloc(std::int32_t device, std::uint64_t bytes, ch_buffer** out) {
  if (device < 0 || static_cast<std::size_t>(device) >= pools().size())
    return fail(CH_ERR_INVALID, "buffer_alloc: no Metal device " + std::to_string(device));
  const std::uint64_t block = blockSize(bytes);
  DevicePool& pool = *pools()[device];
  id<MTLBuffer> buf = nil;
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    auto it = pool.free.find(block);
    if (it != pool.free.end() && !it->second.empty()) {
      buf = it->second.back();
      it->second.pop_back();
      pool.cachedBytes -= block;
    }
  }
  if (!buf) {
    id<MTLDevice> dev = devices()[device].device;
    if (block > dev.maxBufferLength)
      return fail(CH_ERR_OUT_OF_MEMORY, "buffer_alloc: " + std::to_string(bytes) + " bytes exceed the device's largest buffer (" +
                                            std::to_string(dev.maxBufferLength) + " bytes)");
    @autoreleasepool {
      buf = [dev newBufferWithLength:block options:MTLResourceStorageModeShared];
      if (!buf) {
        {
          std::lock_guard<std::mutex> lock(pool.mutex);
          pool.free.clear();
          pool.cachedBytes = 0;
        }
        buf = [dev newBufferWithLength:block options:MTLResourceStorageModeShared];
      }
    }
    if (!buf) return fail(CH_ERR_OUT_OF_MEMORY, "buffer_alloc: the Metal device has no memory for " + std::to_string(bytes) + " bytes");
  }
  *out = new ch_buffer{buf, bytes, block, device};
  return CH_OK;
}

void Allocator::release(ch_buffer* b) {
  if (!b) return;
  if (b->device >= 0 && static_cast<std::size_t>(b->device) < pools().size()) {
    DevicePool& pool = *pools()[b->device];
    std::lock_guard<std::mutex> lock(pool.mutex);
    if (pool.cachedBytes + b->block <= kMaxCachedBytes) {
      pool.free[b->block].push_back(b->buffer);
      pool.cachedBytes += b->block;
    }
  }
  delete b;  // ARC releases the MTLBuffer unless the pool kept it
}

void Allocator::releaseAll() { pools().clear(); }

}  // namespace caphost::metal
