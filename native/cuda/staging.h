// Pinned host memory a stream copies through, so that copy_to_device/copy_to_host enqueue
// truly asynchronous DMA and return at once. Space is bump-allocated from pinned chunks and
// recycled wholesale at synchronize, when the stream is idle: the header's contract (the host
// keeps src/dst untouched until the next synchronize) is what lets downloads land in staging
// first and reach the host's memory only then.
#pragma once

#include <cstdint>
#include <vector>

namespace caphost::cuda {

class Staging {
 public:
  Staging() = default;
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  ~Staging();

  // Pinned space for `bytes`, or nullptr when a copy this large (or this many pending bytes)
  // should go straight from/to pageable memory instead.
  void* take(std::uint64_t bytes);
  // Everything taken since the last reset is free again (the stream is idle).
  void reset();

  // Largest single copy staged; bigger ones go direct (the driver pins in pieces itself).
  static constexpr std::uint64_t kMaxStaged = 64ull << 20;
  // Pinned bytes one stream may hold.
  static constexpr std::uint64_t kMaxPinned = 256ull << 20;
  static constexpr std::uint64_t kChunk = 8ull << 20;

 private:
  struct Chunk {
    unsigned char* base;
    std::uint64_t size;
    std::uint64_t used;
  };
  std::vector<Chunk> chunks_;
  std::uint64_t pinned_ = 0;
};

}  // namespace caphost::cuda
