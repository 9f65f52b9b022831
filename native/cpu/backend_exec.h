// Runs one validated op of the device interface on the CPU (backend.cc owns buffers and
// streams; this file owns the meaning of each op).
#pragma once

#include <cstdint>
#include <stdexcept>

#include "../include/caphost_backend.h"

namespace caphost::cpu {

struct ExecError : std::runtime_error {
  ch_status status;
  ExecError(ch_status s, const std::string& message) : std::runtime_error(message), status(s) {}
};

// Address of a tensor's first byte (defined in backend.cc, which knows ch_buffer).
void* tensorData(const ch_tensor& t);
// Whether the tensor's buffer never changes while it lives (a mapped weights file).
bool isImmutable(const ch_tensor& t);
// Forgets packed copies of weights inside [data, data + bytes) (their buffer is being freed).
void dropPackedWeights(const void* data, std::uint64_t bytes);

void executeOp(const ch_op& op, int threads);
const char* execIsa();

}  // namespace caphost::cpu
