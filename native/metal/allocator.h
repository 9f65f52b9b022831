// A pooling allocator of shared-storage MTLBuffers: freed buffers are kept per device and
// size class (4 per power of two) and handed out again; cached buffers are dropped and the
// request retried once when the device refuses a new one.
#pragma once

#include "state.h"

namespace caphost::metal {

class Allocator {
 public:
  static void configure(int devices);
  static ch_status alloc(std::int32_t device, std::uint64_t bytes, ch_buffer** out);
  static void release(ch_buffer* buffer);
  static void releaseAll();
};

}  // namespace caphost::metal
