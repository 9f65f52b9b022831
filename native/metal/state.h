// The Metal backend's objects behind the opaque handles of caphost_backend.h (Objective-C++,
// ARC). Buffers use shared storage: on Apple silicon the host reads and writes them in place.
#pragma once

#import <Metal/Metal.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../include/caphost_backend.h"

struct ch_buffer {
  id<MTLBuffer> buffer;
  std::uint64_t bytes;  // what the host asked for
  std::uint64_t block;  // the pool block size behind it
  std::int32_t device;
};

struct ch_stream {
  std::int32_t device;
  id<MTLCommandQueue> queue;
  std::vector<id<MTLCommandBuffer>> inflight;  // committed since the last synchronize
  id<MTLBuffer> flags;                         // embedding id flag words (see gather.metal)
  bool checkFlags;
  ch_status failed;     // first failure seen while waiting outside synchronize (copies)
  std::string failure;
};

namespace caphost::metal {

struct Device {
  id<MTLDevice> device;
  NSDictionary<NSString*, id<MTLComputePipelineState>>* pipelines;
  ch_device_info info;
};

// Every initialised device, in ch device order.
std::vector<Device>& devices();
// Pipeline of a kernel by its MSL name (nil if the name is unknown).
id<MTLComputePipelineState> pipeline(std::int32_t device, NSString* name);

ch_status fail(ch_status status, const std::string& message);

}  // namespace caphost::metal
