// A command list as it crosses from JavaScript: ops packed in a Float64Array (kOpWords each;
// see src/device/command-list.ts, which writes the same layout) and the handles they name.
// Decoding resolves every handle against the caller's rights (read for inputs, write for the
// output) and validates every op's dtypes, shapes and byte ranges, so that nothing a backend
// receives can reach outside its buffers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../include/caphost_backend.h"
#include "handle_table.h"

namespace caphost::device {

constexpr int kHeaderWords = 8;   // kind, flags, nInputs, i0, f0, f1, 0, 0
constexpr int kTensorWords = 10;  // handle index (-1: none), byte offset, dtype, rank, shape[6]
constexpr int kOpWords = kHeaderWords + (CH_MAX_INPUTS + 1) * kTensorWords;

struct DecodedList {
  std::vector<ch_op> ops;
  std::vector<BufferRef> held;  // keeps every buffer alive until the run ends
  const OpenBackend* backend = nullptr;
  int device = 0;
};

DecodedList decodeCommandList(const std::string& token, const std::vector<std::string>& handles, const double* words,
                              std::size_t wordCount);

std::uint64_t dtypeSize(int dtype);
const char* opName(int kind);

}  // namespace caphost::device
