// A persistent pool for the CPU backend's data-parallel loops. Spawning threads per op costs
// tens of microseconds, more than a small transformer op takes, so the workers live for the
// process and park on a condition variable between jobs.
#pragma once

#include <cstdint>
#include <functional>

namespace caphost::cpu {

// Runs body(i) for i in [0, count) over up to `threads` threads (the caller is one of them)
// and returns when all are done. Jobs from different callers are serialised. The first
// exception a body throws is rethrown in the caller after the job ends.
void parallelFor(std::int64_t count, int threads, const std::function<void(std::int64_t)>& body);

}  // namespace caphost::cpu
