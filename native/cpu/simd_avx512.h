// AVX-512 helpers shared by the x86 kernels (attention_x86.cc, kernels_x86.cc). Every function
// carries the target attribute, so including files stay buildable for baseline x86-64 and call
// them only after checking the CPU. The maskz_ forms stand in for the plain intrinsics that
// GCC 12 builds on an undefined vector (-Wmaybe-uninitialized).
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "approx_constants.h"

#define CAPHOST_AVX512 __attribute__((target("avx512f")))

namespace caphost::cpu::simd {

// exp(x), Cephes-style as ops_x86.cc's exp8: range reduction by ln 2, degree-5 polynomial,
// then y * 2^n by scalef. Relative error ~1e-7 over [-87.3, 88.3]; below (and NaN) gives 0,
// above is clamped to exp(88.3).
CAPHOST_AVX512 inline __m512 exp16(__m512 x) {
  const __mmask16 all = 0xffff;
  const __m512 lo = _mm512_set1_ps(exp_poly::kMin);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
  x = _mm512_maskz_min_ps(all, _mm512_maskz_max_ps(all, x, lo), _mm512_set1_ps(exp_poly::kMax));
  const __m512 fx = _mm512_maskz_roundscale_ps(all, _mm512_mul_ps(x, _mm512_set1_ps(exp_poly::kLog2e)),
                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(exp_poly::kLn2Hi), x);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(exp_poly::kLn2Lo), x);
  __m512 y = _mm512_set1_ps(exp_poly::kP0);
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_poly::kP1));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_poly::kP2));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_poly::kP3));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_poly::kP4));
  y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(exp_poly::kP5));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(keep, y, fx);
}

// Horizontal max and sum by halving shuffles.
CAPHOST_AVX512 inline float hmax16(__m512 v) {
  const __mmask16 all = 0xffff;
  v = _mm512_maskz_max_ps(all, v, _mm512_maskz_shuffle_f32x4(all, v, v, 0x4e));
  v = _mm512_maskz_max_ps(all, v, _mm512_maskz_shuffle_f32x4(all, v, v, 0xb1));
  v = _mm512_maskz_max_ps(all, v, _mm512_maskz_permute_ps(all, v, 0x4e));
  v = _mm512_maskz_max_ps(all, v, _mm512_maskz_permute_ps(all, v, 0xb1));
  return _mm512_cvtss_f32(v);
}
CAPHOST_AVX512 inline float hsum16(__m512 v) {
  const __mmask16 all = 0xffff;
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(all, v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(all, v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(all, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(all, v, 0xb1));
  return _mm512_cvtss_f32(v);
}

// 0.5 x (1 + erf(x / sqrt 2)), erf from Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), as
// ops_x86.cc's geluErf: erf(|z|) = 1 - t (a1 + t (a2 + ...)) exp(-z^2), t = 1 / (1 + p |z|).
CAPHOST_AVX512 inline __m512 geluErf16(__m512 v) {
  const __mmask16 all = 0xffff;
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 z = _mm512_mul_ps(v, _mm512_set1_ps(erf_poly::kInvSqrt2));
  const __m512 az = _mm512_mask_abs_ps(z, all, z);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(erf_poly::kP), az, one));
  __m512 p = _mm512_set1_ps(erf_poly::kA5);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(erf_poly::kA4));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(erf_poly::kA3));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(erf_poly::kA2));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(erf_poly::kA1));
  p = _mm512_mul_ps(p, t);
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
  const __m512 erfAbs = _mm512_fnmadd_ps(p, e, one);
  // erf is odd: negate where z < 0.
  const __m512 erf = _mm512_mask_sub_ps(erfAbs, _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ),
                                        _mm512_setzero_ps(), erfAbs);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(one, erf));
}

// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), as x * sigmoid(2u).
CAPHOST_AVX512 inline __m512 geluTanh16(__m512 v) {
  const __m512 u2 = _mm512_mul_ps(_mm512_set1_ps(2.0f * 0.7978845608028654f),
                                  _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), _mm512_mul_ps(v, v), v));
  const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), u2));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

}  // namespace caphost::cpu::simd

#endif
