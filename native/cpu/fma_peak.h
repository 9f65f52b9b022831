#pragma once

namespace caphost::cpu {

struct FmaPeak {
  const char* isa;  // "avx512f" | "avx2" | "none"
  double gflops;    // one thread
};

// Runs for about `seconds` on the calling thread.
FmaPeak fmaPeak(double seconds);

}  // namespace caphost::cpu
