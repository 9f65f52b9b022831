#include "allocator.h"

#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

namespace caphost::cuda {

namespace {

// Cached blocks beyond this many bytes per device are freed instead of kept.
constexpr std::uint64_t kMaxCachedBytes = 4ull << 30;
constexpr std::uint64_t kMinBlock = 512;

struct DevicePool {
  std::mutex mutex;
  std::map<std::uint64_t, std::vector<void*>> free;  // block size → cached pointers
  std::uint64_t cachedBytes = 0;
};

std::vector<std::unique_ptr<DevicePool>>& pools() {
  static std::vector<std::unique_ptr<DevicePool>> p;
  return p;
}

void freeCached(std::int32_t device, DevicePool& pool) {
  // Caller holds pool.mutex.
  if (useDevice(device) != CH_OK) return;
  for (auto& [size, ptrs] : pool.free)
    for (void* p : ptrs) cudaFree(p);
  pool.free.clear();
  pool.cachedBytes = 0;
}

}  // namespace

void Allocator::configure(int devices) {
  auto& p = pools();
  p.clear();
  for (int i = 0; i < devices; ++i) p.push_back(std::make_unique<DevicePool>());
}

std::uint64_t Allocator::blockSize(std::uint64_t bytes) {
  if (bytes <= kMinBlock) return kMinBlock;
  int top = 63 - __builtin_clzll(bytes);        // bytes in [2^top, 2^(top+1))
  const std::uint64_t quarter = (1ull << top) / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

ch_status Allocator::alloc(std::int32_t device, std::uint64_t bytes, ch_buffer** out) {
  auto& p = pools();
  if (device < 0 || static_cast<std::size_t>(device) >= p.size())
    return fail(CH_ERR_INVALID, "buffer_alloc: no CUDA device " + std::to_string(device));
  const std::uint64_t block = blockSize(bytes);
  DevicePool& pool = *p[device];
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    auto it = pool.free.find(block);
    if (it != pool.free.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      pool.cachedBytes -= block;
    }
  }
  if (!ptr) {
    if (ch_status s = useDevice(device); s != CH_OK) return s;
    cudaError_t err = cudaMalloc(&ptr, block);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      {
        std::lock_guard<std::mutex> lock(pool.mutex);
        freeCached(device, pool);
      }
      err = cudaMalloc(&ptr, block);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      if (err == cudaErrorMemoryAllocation)
        return fail(CH_ERR_OUT_OF_MEMORY, "buffer_alloc: CUDA device " + std::to_string(device) +
                                              " is out of memory for " + std::to_string(bytes) + " bytes");
      return failCuda(err, "buffer_alloc: cudaMalloc of " + std::to_string(block) + " bytes");
    }
  }
  auto* b = new (std::nothrow) ch_buffer{ptr, bytes, block, device};
  if (!b) {
    std::lock_guard<std::mutex> lock(pool.mutex);
    pool.free[block].push_back(ptr);
    pool.cachedBytes += block;
    return fail(CH_ERR_OUT_OF_MEMORY, "buffer_alloc: host out of memory");
  }
  *out = b;
  return CH_OK;
}

void Allocator::release(ch_buffer* buffer) {
  if (!buffer) return;
  auto& p = pools();
  if (buffer->device >= 0 && static_cast<std::size_t>(buffer->device) < p.size()) {
    DevicePool& pool = *p[buffer->device];
    std::lock_guard<std::mutex> lock(pool.mutex);
    if (pool.cachedBytes + buffer->block <= kMaxCachedBytes) {
      pool.free[buffer->block].push_back(buffer->ptr);
      pool.cachedBytes += buffer->block;
    } else if (useDevice(buffer->device) == CH_OK) {
      cudaFree(buffer->ptr);
    }
  }
  delete buffer;
}

void Allocator::trim(std::int32_t device) {
  auto& p = pools();
  if (device < 0 || static_cast<std::size_t>(device) >= p.size()) return;
  std::lock_guard<std::mutex> lock(p[device]->mutex);
  freeCached(device, *p[device]);
}

void Allocator::releaseAll() {
  for (std::size_t d = 0; d < pools().size(); ++d) trim(static_cast<std::int32_t>(d));
  pools().clear();
}

}  // namespace caphost::cuda
