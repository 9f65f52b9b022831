// The CPU device backend behind caphost_backend.h, linked into the device addon. Buffers are
// memfd mappings on Linux (so a sandboxed process worker can map exactly the buffers it is
// granted) and aligned heap blocks elsewhere; ops run on the submitting thread, with the
// data-parallel parts spread over the persistent pool.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../include/caphost_backend.h"

namespace caphost::cpu {

const ch_backend* cpuBackend();

// Threads the kernels use; default: the CPU's hardware threads. Set before or between runs.
void setCpuThreads(int threads);
int cpuThreads();

// Wraps memory the host owns (a read-only file mapping of weights) as a buffer of this
// backend. release(context) runs when the buffer is freed. shareFd is -1 or a descriptor
// whose mapping from 0 is this memory (the backend dups nothing and closes nothing).
ch_buffer* wrapHostMemory(void* data, std::uint64_t bytes, int shareFd, void (*release)(void*),
                          void* context);

}  // namespace caphost::cpu
