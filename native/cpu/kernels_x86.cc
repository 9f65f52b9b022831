// x86-64 micro-kernels, compiled for their ISA by function attribute only, so the addon
// still loads on any x86-64; gemm.cc calls them only after __builtin_cpu_supports.
#include "gemm.h"
#include "simd_avx512.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace caphost::cpu {
namespace {

// MR x (16 NV) tiles: MR * NV zmm accumulators, NV for B, broadcasts of A folded into the FMAs.
// 8 x 48 (24 accumulators) is the default: as FMA-dense as 12 x 32 with fewer loads per step,
// and its 8 rows divide the row counts a batched encoder produces (16 or 128 per sequence),
// where 12 rows leave a part-empty tile (16 = 12 + 4 runs at two thirds of the speed).
template <int MR, int NV, typename ARead>
__attribute__((target("avx512f"))) inline void kernelAvx512Core(int kc, ARead a, const float* b, float* c, int ldc,
                                                             bool first, const float* bias, bool relu) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int p = 0; p < kc; ++p) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a(i, p));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
    b += NR;
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    float* row = c + static_cast<std::int64_t>(i) * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512 x = acc[i][v];
      if (!first) x = _mm512_add_ps(x, _mm512_loadu_ps(row + 16 * v));
      if (bias) x = _mm512_add_ps(x, _mm512_loadu_ps(bias + 16 * v));
      // A masked move rather than _mm512_max_ps, whose GCC 12 header trips -Wmaybe-uninitialized.
      if (relu) x = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ), x);
      _mm512_storeu_ps(row + 16 * v, x);
    }
  }
}

template <int MR, int NV>
__attribute__((target("avx512f"))) void kernelAvx512(int kc, const float* a, const float* b, float* c, int ldc,
                                                      bool first, const float* bias, bool relu) {
  kernelAvx512Core<MR, NV>(kc, [a](int i, int p) { return a[p * MR + i]; }, b, c, ldc, first, bias, relu);
}

// A read in place, row by row (each row a stream the prefetcher follows).
template <int MR, int NV>
__attribute__((target("avx512f"))) void kernelAvx512Rows(int kc, const float* const* a, const float* b, float* c,
                                                          int ldc, bool first, const float* bias, bool relu) {
  const float* rows[MR];
  for (int i = 0; i < MR; ++i) rows[i] = a[i];
  kernelAvx512Core<MR, NV>(kc, [&rows](int i, int p) { return rows[i][p]; }, b, c, ldc, first, bias, relu);
}

// 6 x 16 tile: 12 ymm accumulators, 2 for B, 1 broadcast.
constexpr int kMr256 = 6, kNr256 = 16;

__attribute__((target("avx2,fma"))) void kernelAvx2(int kc, const float* a, const float* b, float* c,
                                                     int ldc, bool first, const float* bias, bool relu) {
  __m256 acc[kMr256][2];
#pragma GCC unroll 6
  for (int i = 0; i < kMr256; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * kNr256), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int i = 0; i < kMr256; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
    a += kMr256;
    b += kNr256;
  }
  const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < kMr256; ++i) {
    float* row = c + static_cast<std::int64_t>(i) * ldc;
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (!first) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
    }
    v0 = _mm256_add_ps(v0, bias0);
    v1 = _mm256_add_ps(v1, bias1);
    if (relu) {
      v0 = _mm256_max_ps(v0, zero);
      v1 = _mm256_max_ps(v1, zero);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  }
}

// GELU over a finished tile, 16 columns at a time (the last vector masked).
__attribute__((target("avx512f"))) void activateAvx512(int activation, float* c, std::int64_t ldc, int rows,
                                                        int cols) {
  for (int r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int j = 0; j < cols; j += 16) {
      const __mmask16 m = cols - j >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (cols - j)) - 1u);
      const __m512 v = _mm512_maskz_loadu_ps(m, row + j);
      _mm512_mask_storeu_ps(row + j, m, activation == kActGeluErf ? simd::geluErf16(v) : simd::geluTanh16(v));
    }
  }
}

const KernelSet kAvx512{"avx512f", 8, 48, 384, 480, kernelAvx512<8, 3>, activateAvx512,
                               kernelAvx512Rows<8, 3>};
const KernelSet kAvx512x12{"avx512f-12x32", 12, 32, 384, 480, kernelAvx512<12, 2>,
                                  activateAvx512, kernelAvx512Rows<12, 2>};
const KernelSet kAvx2{"avx2", kMr256, kNr256, 256, 480, kernelAvx2, nullptr, nullptr};

}  // namespace

const KernelSet* x86Avx512Set() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") ? &kAvx512 : nullptr;
}
const KernelSet* x86Avx512Set12x32() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") ? &kAvx512x12 : nullptr;
}
const KernelSet* x86Avx2Set() {
  __builtin_cpu_init();
  return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? &kAvx2 : nullptr;
}

}  // namespace caphost::cpu

#else

namespace caphost::cpu {
const KernelSet* x86Avx512Set() { return nullptr; }
const KernelSet* x86Avx512Set12x32() { return nullptr; }
const KernelSet* x86Avx2Set() { return nullptr; }
}  // namespace caphost::cpu

#endif
