// The stream half of the Metal backend table (stream.mm, encode.mm).
#pragma once

#include "state.h"

namespace caphost::metal {

ch_status streamCreate(std::int32_t device, ch_stream** out);
void streamDestroy(ch_stream* stream);
ch_status copyToDevice(ch_stream* stream, ch_buffer* dst, std::uint64_t offset, const void* src, std::uint64_t bytes);
ch_status copyToHost(ch_stream* stream, void* dst, ch_buffer* src, std::uint64_t offset, std::uint64_t bytes);
ch_status submit(ch_stream* stream, const ch_op* ops, std::uint32_t count);
ch_status synchronize(ch_stream* stream);

// Encodes one op on `enc`; sets last_error and returns non-OK for an op it cannot run.
ch_status encodeOp(ch_stream* stream, id<MTLComputeCommandEncoder> enc, const ch_op& op);

}  // namespace caphost::metal
