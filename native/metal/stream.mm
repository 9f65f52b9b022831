// Streams: a command queue per stream; each submit is one command buffer with one compute
// encoder (dispatches in a serial encoder, and command buffers in one queue, run in order).
// Buffers are shared storage, so copies are memcpy once the stream's earlier work is done.
#include <cstring>

#include "stream_ops.h"

namespace caphost::metal {

namespace {

constexpr std::size_t kFlagBytes = 3 * sizeof(int);

// Waits for everything committed on the stream; keeps the first failure for synchronize.
void waitIdle(ch_stream* st) {
  for (id<MTLCommandBuffer> cb : st->inflight) {
    [cb waitUntilCompleted];
    if (cb.status == MTLCommandBufferStatusError && st->failed == CH_OK) {
      st->failed = CH_ERR_DEVICE;
      st->failure = std::string("the Metal command buffer failed: ") +
                    (cb.error ? cb.error.localizedDescription.UTF8String : "no reason given");
    }
  }
  st->inflight.clear();
}

}  // namespace

ch_status streamCreate(std::int32_t device, ch_stream** out) {
  if (!out) return fail(CH_ERR_INVALID, "stream_create: out is null");
  if (device < 0 || static_cast<std::size_t>(device) >= devices().size())
    return fail(CH_ERR_INVALID, "stream_create: no Metal device " + std::to_string(device));
  id<MTLDevice> dev = devices()[device].device;
  id<MTLCommandQueue> queue = [dev newCommandQueue];
  id<MTLBuffer> flags = [dev newBufferWithLength:kFlagBytes options:MTLResourceStorageModeShared];
  if (!queue || !flags) return fail(CH_ERR_DEVICE, "stream_create: the Metal device gave no command queue");
  std::memset(flags.contents, 0, kFlagBytes);
  *out = new ch_stream{device, queue, {}, flags, false, CH_OK, {}};
  return CH_OK;
}

void streamDestroy(ch_stream* st) {
  if (!st) return;
  waitIdle(st);
  delete st;
}

ch_status copyToDevice(ch_stream* st, ch_buffer* dst, std::uint64_t offset, const void* src, std::uint64_t bytes) {
  if (bytes == 0) return CH_OK;
  waitIdle(st);
  std::memcpy(static_cast<char*>(dst->buffer.contents) + offset, src, bytes);
  return CH_OK;
}

ch_status copyToHost(ch_stream* st, void* dst, ch_buffer* src, std::uint64_t offset, std::uint64_t bytes) {
  if (bytes == 0) return CH_OK;
  waitIdle(st);
  std::memcpy(dst, static_cast<const char*>(src->buffer.contents) + offset, bytes);
  return CH_OK;
}

ch_status submit(ch_stream* st, const ch_op* ops, std::uint32_t count) {
  if (count == 0) return CH_OK;
  @autoreleasepool {
    id<MTLCommandBuffer> cb = [st->queue commandBuffer];
    id<MTLComputeCommandEncoder> enc = [cb computeCommandEncoder];
    if (!cb || !enc) return fail(CH_ERR_DEVICE, "submit: the Metal queue gave no command buffer");
    for (std::uint32_t i = 0; i < count; ++i) {
      if (ch_status s = encodeOp(st, enc, ops[i]); s != CH_OK) {
        [enc endEncoding];  // nothing of this list is committed
        return s;
      }
    }
    [enc endEncoding];
    [cb commit];
    st->inflight.push_back(cb);
  }
  return CH_OK;
}

ch_status synchronize(ch_stream* st) {
  waitIdle(st);
  const ch_status failed = st->failed;
  const std::string failure = st->failure;
  st->failed = CH_OK;
  st->failure.clear();
  int* flags = static_cast<int*>(st->flags.contents);
  const bool idError = st->checkFlags && flags[0] != 0;
  const int id = flags[1], vocab = flags[2];
  if (st->checkFlags) std::memset(flags, 0, kFlagBytes);
  st->checkFlags = false;
  if (failed != CH_OK) return fail(failed, failure);
  if (idError)
    return fail(CH_ERR_INVALID, "embedding: id " + std::to_string(id) + " is outside the table's rows [0, " +
                                    std::to_string(vocab) + ")");
  return CH_OK;
}

}  // namespace caphost::metal
