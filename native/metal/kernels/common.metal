// Shared by every kernel file (the backend concatenates common.metal first): dtype access
// through byte pointers (0 f32, 1 f16, 2 bf16 as raw bits, so no MSL 3.1 bfloat is needed),
// activations, and a threadgroup tree reduction for 256-thread groups.
#include <metal_stdlib>
using namespace metal;

// Threads per group of the row, attention and reduction kernels (a macro: usable as an array bound).
#define kGroup 256u

inline float bf16ToFloat(ushort h) { return as_type<float>(uint(h) << 16); }
inline ushort floatToBf16(float f) {
  const uint x = as_type<uint>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return ushort((x >> 16) | 0x40u);
  return ushort((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline float loadAs(device const uchar* base, ulong i, int dtype) {
  if (dtype == 0) return ((device const float*)base)[i];
  if (dtype == 1) return float(((device const half*)base)[i]);
  return bf16ToFloat(((device const ushort*)base)[i]);
}
inline void storeAs(device uchar* base, ulong i, int dtype, float v) {
  if (dtype == 0) ((device float*)base)[i] = v;
  else if (dtype == 1) ((device half*)base)[i] = half(v);
  else ((device ushort*)base)[i] = floatToBf16(v);
}

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): MSL has no erf.
inline float erfApprox(float x) {
  const float s = x < 0.0f ? -1.0f : 1.0f, a = fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t +
                          0.254829592f) * t * precise::exp(-a * a);
  return s * y;
}
inline float geluErf(float x) { return 0.5f * x * (1.0f + erfApprox(x * 0.70710678118654752f)); }
inline float geluTanh(float x) {
  return 0.5f * x * (1.0f + precise::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
inline float silu(float x) { return x / (1.0f + precise::exp(-x)); }

// ch_activation: 0 none, 1 relu, 2 gelu tanh, 3 gelu erf.
inline float activate(float v, int act) {
  if (act == 1) return v > 0.0f ? v : 0.0f;
  if (act == 2) return geluTanh(v);
  if (act == 3) return geluErf(v);
  return v;
}

// Sum or max over a group of kGroup threads; every thread gets the result. scratch holds
// kGroup floats; the barriers make back-to-back calls safe.
inline float groupReduce(float v, bool isMax, threadgroup float* scratch, uint tid) {
  threadgroup_barrier(mem_flags::mem_threadgroup);
  scratch[tid] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = kGroup / 2; s > 0; s >>= 1) {
    if (tid < s) scratch[tid] = isMax ? max(scratch[tid], scratch[tid + s]) : scratch[tid] + scratch[tid + s];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  return scratch[0];
}
