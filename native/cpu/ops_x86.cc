// AVX2+FMA row kernels (F16C for the f16 casts when the CPU has it), compiled by function
// attribute only so the addon still loads on any x86-64; x86Avx2Ops() returns the table
// only after __builtin_cpu_supports.
#include "ops.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include "approx_constants.h"

#include <cmath>

#define CAPHOST_AVX2 __attribute__((target("avx2,fma")))

namespace caphost::cpu::ops {
namespace {

CAPHOST_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

CAPHOST_AVX2 inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp(x), Cephes-style: range reduction by ln 2 and a degree-5 polynomial; relative error
// ~1e-7 over [-87, 88]; inputs are clamped there (below gives ~0, above ~3.4e38).
CAPHOST_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(x, _mm256_set1_ps(exp_poly::kMax));
  x = _mm256_max_ps(x, _mm256_set1_ps(exp_poly::kMin));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(exp_poly::kLog2e), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(exp_poly::kLn2Hi), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(exp_poly::kLn2Lo), x);
  __m256 y = _mm256_set1_ps(exp_poly::kP0);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_poly::kP1));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_poly::kP2));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_poly::kP3));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_poly::kP4));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(exp_poly::kP5));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// Loops 8 lanes at a time; the tail goes through the scalar body.
#define VLOOP(n, vec_body, scalar_body)        \
  i64 i = 0;                                   \
  for (; i + 8 <= (n); i += 8) { vec_body; }   \
  for (; i < (n); ++i) { scalar_body; }

CAPHOST_AVX2 void add(const float* a, const float* b, float* out, i64 n) {
  VLOOP(n, _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))),
        out[i] = a[i] + b[i])
}
CAPHOST_AVX2 void mul(const float* a, const float* b, float* out, i64 n) {
  VLOOP(n, _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))),
        out[i] = a[i] * b[i])
}
CAPHOST_AVX2 void scale(const float* x, float* out, i64 n, float alpha) {
  const __m256 s = _mm256_set1_ps(alpha);
  VLOOP(n, _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s)), out[i] = x[i] * alpha)
}
CAPHOST_AVX2 void relu(const float* x, float* out, i64 n) {
  const __m256 z = _mm256_setzero_ps();
  VLOOP(n, _mm256_storeu_ps(out + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z)), out[i] = x[i] > 0.0f ? x[i] : 0.0f)
}
// x * sigmoid(k x): silu with k = 1; the GELU tanh form is x * sigmoid(2u).
CAPHOST_AVX2 inline __m256 xSigmoid(__m256 x, __m256 kx) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), kx))));
}
CAPHOST_AVX2 void silu(const float* x, float* out, i64 n) {
  VLOOP(n, { const __m256 v = _mm256_loadu_ps(x + i); _mm256_storeu_ps(out + i, xSigmoid(v, v)); },
        out[i] = x[i] / (1.0f + std::exp(-x[i])))
}
CAPHOST_AVX2 void geluTanh(const float* x, float* out, i64 n) {
  const __m256 c0 = _mm256_set1_ps(2.0f * 0.7978845608028654f), c1 = _mm256_set1_ps(0.044715f);
  VLOOP(n,
        {
          const __m256 v = _mm256_loadu_ps(x + i);
          const __m256 u2 = _mm256_mul_ps(c0, _mm256_fmadd_ps(_mm256_mul_ps(c1, v), _mm256_mul_ps(v, v), v));
          _mm256_storeu_ps(out + i, xSigmoid(v, u2));
        },
        {
          const float v = x[i];
          out[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        })
}
// 0.5 x (1 + erf(x / sqrt 2)) with erf from Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7):
// erf(|z|) = 1 - t (a1 + t (a2 + ...)) exp(-z^2), t = 1 / (1 + p |z|); odd in z.
CAPHOST_AVX2 void geluErf(const float* x, float* out, i64 n) {
  const __m256 signMask = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
  VLOOP(n,
        {
          const __m256 v = _mm256_loadu_ps(x + i);
          const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(erf_poly::kInvSqrt2));
          const __m256 az = _mm256_andnot_ps(signMask, z);
          const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(erf_poly::kP), az, one));
          __m256 p = _mm256_set1_ps(erf_poly::kA5);
          p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(erf_poly::kA4));
          p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(erf_poly::kA3));
          p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(erf_poly::kA2));
          p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(erf_poly::kA1));
          p = _mm256_mul_ps(p, t);
          const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
          const __m256 erfAbs = _mm256_fnmadd_ps(p, e, one);
          const __m256 erf = _mm256_or_ps(erfAbs, _mm256_and_ps(signMask, z));
          _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf)));
        },
        out[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * erf_poly::kInvSqrt2)))
}
CAPHOST_AVX2 void softmaxRow(const float* x, float* out, i64 n) {
  __m256 vmx = _mm256_set1_ps(-INFINITY);
  float mx = -INFINITY;
  { VLOOP(n, vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + i)), mx = x[i] > mx ? x[i] : mx) }
  mx = std::fmax(mx, hmax(vmx));
  const __m256 m = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  float sum = 0.0f;
  {
    VLOOP(n,
          {
            const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
            _mm256_storeu_ps(out + i, e);
            vsum = _mm256_add_ps(vsum, e);
          },
          {
            out[i] = std::exp(x[i] - mx);
            sum += out[i];
          })
  }
  scale(out, out, n, 1.0f / (sum + hsum(vsum)));
}
CAPHOST_AVX2 float sumSquares(const float* x, i64 n, float center) {
  const __m256 c = _mm256_set1_ps(center);
  __m256 acc = _mm256_setzero_ps();
  float s = 0.0f;
  VLOOP(n, { const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), c); acc = _mm256_fmadd_ps(d, d, acc); },
        s += (x[i] - center) * (x[i] - center))
  return s + hsum(acc);
}
CAPHOST_AVX2 void layerNormRow(const float* x, const float* gamma, const float* beta, float* out, i64 n,
                               float eps) {
  __m256 acc = _mm256_setzero_ps();
  float s = 0.0f;
  { VLOOP(n, acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i)), s += x[i]) }
  const float mean = (s + hsum(acc)) / static_cast<float>(n);
  const float rstd = 1.0f / std::sqrt(sumSquares(x, n, mean) / static_cast<float>(n) + eps);
  const __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rstd);
  VLOOP(n,
        {
          const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vr);
          _mm256_storeu_ps(out + i, _mm256_fmadd_ps(t, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
        },
        out[i] = (x[i] - mean) * rstd * gamma[i] + beta[i])
}
CAPHOST_AVX2 void rmsNormRow(const float* x, const float* gamma, float* out, i64 n, float eps) {
  const float r = 1.0f / std::sqrt(sumSquares(x, n, 0.0f) / static_cast<float>(n) + eps);
  const __m256 vr = _mm256_set1_ps(r);
  VLOOP(n,
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vr), _mm256_loadu_ps(gamma + i))),
        out[i] = x[i] * r * gamma[i])
}
CAPHOST_AVX2 void l2NormRow(const float* x, float* out, i64 n, float eps) {
  scale(x, out, n, 1.0f / std::fmax(std::sqrt(sumSquares(x, n, 0.0f)), eps));
}
CAPHOST_AVX2 void accumulate(float* dst, const float* src, i64 n) { add(dst, src, dst, n); }

__attribute__((target("avx2,fma,f16c"))) void f32ToF16(const float* x, std::uint16_t* out, i64 n) {
  VLOOP(n,
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)),
        out[i] = f32ToF16Bits(x[i]))
}
__attribute__((target("avx2,fma,f16c"))) void f16ToF32(const std::uint16_t* x, float* out, i64 n) {
  VLOOP(n, _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)))),
        out[i] = f16BitsToF32(x[i]))
}

// bf16: round to nearest even on the bit pattern; NaN keeps its top bits and turns quiet.
CAPHOST_AVX2 void f32ToBf16(const float* x, std::uint16_t* out, i64 n) {
  const __m256i absMask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), quiet = _mm256_set1_epi32(0x40);
  VLOOP(n,
        {
          const __m256i b = _mm256_castps_si256(_mm256_loadu_ps(x + i));
          const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), one);
          const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_add_epi32(bias, lsb)), 16);
          const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, absMask), inf);
          const __m256i nanBits = _mm256_or_si256(_mm256_srli_epi32(b, 16), quiet);
          const __m256i r = _mm256_blendv_epi8(rounded, nanBits, nan);
          const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(packed));
        },
        out[i] = f32ToBf16Bits(x[i]))
}
CAPHOST_AVX2 void bf16ToF32(const std::uint16_t* x, float* out, i64 n) {
  VLOOP(n,
        {
          const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
          _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
        },
        out[i] = bf16BitsToF32(x[i]))
}

const OpsTable* build() {
  static OpsTable t = [] {
    OpsTable v = *genericOps();
    v.isa = "avx2";
    v.add = add, v.mul = mul, v.scale = scale, v.relu = relu, v.silu = silu, v.geluErf = geluErf;
    v.geluTanh = geluTanh;
    v.softmaxRow = softmaxRow, v.layerNormRow = layerNormRow, v.rmsNormRow = rmsNormRow;
    v.l2NormRow = l2NormRow, v.accumulate = accumulate, v.f32ToBf16 = f32ToBf16, v.bf16ToF32 = bf16ToF32;
    if (__builtin_cpu_supports("f16c")) v.f32ToF16 = f32ToF16, v.f16ToF32 = f16ToF32;
    return v;
  }();
  return &t;
}

}  // namespace

const OpsTable* x86Avx2Ops() {
  return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? build() : nullptr;
}

}  // namespace caphost::cpu::ops

#else

namespace caphost::cpu::ops {
const OpsTable* x86Avx2Ops() { return nullptr; }
}  // namespace caphost::cpu::ops

#endif
