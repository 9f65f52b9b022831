// The ceiling the GEMM is measured against: a loop of independent FMA chains that never
// touches memory, on the widest vectors this CPU runs. Twelve accumulators cover the FMA
// latency (4 cycles) times the FMA pipes (2) with room to spare.
#include "fma_peak.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace caphost::cpu {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kChains = 12;
constexpr long kInner = 1 << 16;

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx512f"))) double loopAvx512(double seconds, float* sink) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  double flops = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  while (Clock::now() < end) {
    for (long r = 0; r < kInner; ++r)
      for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    flops += 2.0 * 16 * kChains * kInner;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  *sink = lanes[0];
  return flops / elapsed;
}

__attribute__((target("avx2,fma"))) double loopAvx2(double seconds, float* sink) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  double flops = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  while (Clock::now() < end) {
    for (long r = 0; r < kInner; ++r)
      for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    flops += 2.0 * 8 * kChains * kInner;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  *sink = lanes[0];
  return flops / elapsed;
}
#endif

}  // namespace

FmaPeak fmaPeak(double seconds) {
  float sink = 0;
#if defined(__x86_64__) || defined(_M_X64)
  if (__builtin_cpu_supports("avx512f")) return {"avx512f", loopAvx512(seconds, &sink) / 1e9 + sink * 0};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"avx2", loopAvx2(seconds, &sink) / 1e9 + sink * 0};
#endif
  (void)seconds;
  (void)sink;
  return {"none", 0};
}

}  // namespace caphost::cpu
