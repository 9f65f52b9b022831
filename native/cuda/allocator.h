// A pooling device allocator: freed blocks are kept per device and size class and handed out
// again, so the cudaMalloc/cudaFree pair (each a device-wide synchronisation) stays off the
// path of a running model. Size classes are 4 per power of two (at most 25% slack); cached
// memory is released when a cudaMalloc fails and the request retried once.
#pragma once

#include <cstdint>

#include "state.h"

namespace caphost::cuda {

class Allocator {
 public:
  // Sizes the per-device tables; called by init() once the device count is known.
  static void configure(int devices);
  static ch_status alloc(std::int32_t device, std::uint64_t bytes, ch_buffer** out);
  // Returns the block to its pool; the host frees a buffer only once no work uses it.
  static void release(ch_buffer* buffer);
  // Frees every cached (unused) block; pooled bytes still in use stay.
  static void trim(std::int32_t device);
  static void releaseAll();
  // Block size that serves a request of `bytes` (exposed for tests of the class rule).
  static std::uint64_t blockSize(std::uint64_t bytes);
};

}  // namespace caphost::cuda
