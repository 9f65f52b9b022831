// Portable row kernels and the scalar f16/bf16 conversions (bit manipulation, round to
// nearest even). Used on every CPU without AVX2+FMA and when forced with forceIsa 'scalar'.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops.h"

namespace caphost::cpu::ops {

namespace {
inline std::uint32_t bitsOf(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float floatOf(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

std::uint16_t f32ToF16Bits(float f) {
  const std::uint32_t x = bitsOf(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN (NaN: quiet, top mantissa bits kept, like F16C)
    if (absx == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((absx >> 13) & 0x3ffu));
  }
  const int exp = static_cast<int>(absx >> 23) - 127;
  if (exp > 15) return sign | 0x7c00u;  // overflow (rounding cannot bring it back)
  if (exp >= -14) {                     // normal half
    std::uint32_t mant = absx & 0x7fffffu;
    std::uint32_t h = (static_cast<std::uint32_t>(exp + 15) << 10) | (mant >> 13);
    const std::uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent / to inf
    return static_cast<std::uint16_t>(sign | h);
  }
  if (exp < -25) return sign;  // below half the smallest subnormal: zero
  // Subnormal half: value = m * 2^-24 with the implicit bit restored.
  const std::uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
  const int shift = -exp - 14 + 13;  // 14..24
  std::uint32_t h = mant >> shift;
  const std::uint32_t rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float f16BitsToF32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1fu) return floatOf(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return floatOf(sign | ((exp + 112u) << 23) | (mant << 13));
  const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // 2^-24
  return sign ? -v : v;
}

std::uint16_t f32ToBf16Bits(float f) {
  const std::uint32_t x = bitsOf(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

float bf16BitsToF32(std::uint16_t h) { return floatOf(static_cast<std::uint32_t>(h) << 16); }

namespace {

void add(const float* a, const float* b, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
void mul(const float* a, const float* b, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
void scale(const float* x, float* out, i64 n, float alpha) {
  for (i64 i = 0; i < n; ++i) out[i] = x[i] * alpha;
}
void relu(const float* x, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void silu(const float* x, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = x[i] / (1.0f + std::exp(-x[i]));
}
void geluErf(const float* x, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}
void geluTanh(const float* x, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) {
    const float v = x[i];
    out[i] = 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
  }
}
void softmaxRow(const float* x, float* out, i64 n) {
  float mx = -INFINITY;
  for (i64 i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0;
  for (i64 i = 0; i < n; ++i) {
    out[i] = std::exp(x[i] - mx);
    sum += out[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (i64 i = 0; i < n; ++i) out[i] *= inv;
}
void layerNormRow(const float* x, const float* gamma, const float* beta, float* out, i64 n, float eps) {
  double sum = 0;
  for (i64 i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double var = 0;
  for (i64 i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float rstd = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(n) + eps));
  const float m = static_cast<float>(mean);
  for (i64 i = 0; i < n; ++i) out[i] = (x[i] - m) * rstd * gamma[i] + beta[i];
}
void rmsNormRow(const float* x, const float* gamma, float* out, i64 n, float eps) {
  double ss = 0;
  for (i64 i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (i64 i = 0; i < n; ++i) out[i] = x[i] * r * gamma[i];
}
void l2NormRow(const float* x, float* out, i64 n, float eps) {
  double ss = 0;
  for (i64 i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::max(std::sqrt(ss), static_cast<double>(eps)));
  for (i64 i = 0; i < n; ++i) out[i] = x[i] * inv;
}
void accumulate(float* dst, const float* src, i64 n) {
  for (i64 i = 0; i < n; ++i) dst[i] += src[i];
}
void f32ToF16(const float* x, std::uint16_t* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = f32ToF16Bits(x[i]);
}
void f16ToF32(const std::uint16_t* x, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = f16BitsToF32(x[i]);
}
void f32ToBf16(const float* x, std::uint16_t* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = f32ToBf16Bits(x[i]);
}
void bf16ToF32(const std::uint16_t* x, float* out, i64 n) {
  for (i64 i = 0; i < n; ++i) out[i] = bf16BitsToF32(x[i]);
}

const OpsTable kGeneric{"scalar",     add,          mul,        scale,     relu,       silu,
                        geluErf,      geluTanh,     softmaxRow, layerNormRow, rmsNormRow, l2NormRow,
                        accumulate,   f32ToF16,     f16ToF32,   f32ToBf16, bf16ToF32};

}  // namespace

const OpsTable* genericOps() { return &kGeneric; }

}  // namespace caphost::cpu::ops
