#include "staging.h"

#include <cuda_runtime_api.h>

namespace caphost::cuda {

namespace {
constexpr std::uint64_t kAlign = 256;
}

Staging::~Staging() {
  for (Chunk& c : chunks_) cudaFreeHost(c.base);
}

void* Staging::take(std::uint64_t bytes) {
  if (bytes > kMaxStaged) return nullptr;
  const std::uint64_t want = (bytes + kAlign - 1) / kAlign * kAlign;
  for (Chunk& c : chunks_) {
    if (c.size - c.used >= want) {
      void* p = c.base + c.used;
      c.used += want;
      return p;
    }
  }
  const std::uint64_t size = want > kChunk ? want : kChunk;
  if (pinned_ + size > kMaxPinned) return nullptr;
  void* base = nullptr;
  if (cudaHostAlloc(&base, size, cudaHostAllocPortable) != cudaSuccess) {
    cudaGetLastError();  // out of pinned memory: the caller copies from pageable memory instead
    return nullptr;
  }
  pinned_ += size;
  chunks_.push_back(Chunk{static_cast<unsigned char*>(base), size, want});
  return base;
}

void Staging::reset() {
  for (Chunk& c : chunks_) c.used = 0;
}

}  // namespace caphost::cuda
