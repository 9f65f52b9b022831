// The NEON micro-kernel (arm64) and the portable one every architecture has.
#include "gemm.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace caphost::cpu {
namespace {

// Portable 4 x 8 tile; plain loops the compiler may vectorise for the baseline ISA.
constexpr int kMrS = 4, kNrS = 8;

void kernelScalar(int kc, const float* a, const float* b, float* c, int ldc, bool first, const float* bias,
                  bool relu) {
  float acc[kMrS][kNrS] = {};
  for (int p = 0; p < kc; ++p) {
    for (int i = 0; i < kMrS; ++i) {
      const float av = a[i];
      for (int j = 0; j < kNrS; ++j) acc[i][j] += av * b[j];
    }
    a += kMrS;
    b += kNrS;
  }
  for (int i = 0; i < kMrS; ++i) {
    float* row = c + static_cast<std::int64_t>(i) * ldc;
    for (int j = 0; j < kNrS; ++j) {
      float v = acc[i][j];
      if (!first) v += row[j];
      if (bias != nullptr) v += bias[j];
      if (relu && v < 0.0f) v = 0.0f;
      row[j] = v;
    }
  }
}

const KernelSet kScalar{"scalar", kMrS, kNrS, 256, 512, kernelScalar, nullptr, nullptr};

#if defined(__aarch64__)
// 8 x 8 tile: 16 q-register accumulators, 2 for B, A read 4 lanes at a time.
constexpr int kMrN = 8, kNrN = 8;

void kernelNeon(int kc, const float* a, const float* b, float* c, int ldc, bool first, const float* bias,
                bool relu) {
  float32x4_t acc[kMrN][2];
  for (int i = 0; i < kMrN; ++i) acc[i][0] = acc[i][1] = vdupq_n_f32(0.0f);
  for (int p = 0; p < kc; ++p) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0);
    acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0);
    acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1);
    acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1);
    acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2);
    acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2);
    acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3);
    acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3);
    acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0);
    acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0);
    acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1);
    acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1);
    acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2);
    acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2);
    acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3);
    acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3);
    a += kMrN;
    b += kNrN;
  }
  const float32x4_t bias0 = bias ? vld1q_f32(bias) : vdupq_n_f32(0.0f);
  const float32x4_t bias1 = bias ? vld1q_f32(bias + 4) : vdupq_n_f32(0.0f);
  const float32x4_t zero = vdupq_n_f32(0.0f);
  for (int i = 0; i < kMrN; ++i) {
    float* row = c + static_cast<std::int64_t>(i) * ldc;
    float32x4_t v0 = acc[i][0], v1 = acc[i][1];
    if (!first) {
      v0 = vaddq_f32(v0, vld1q_f32(row));
      v1 = vaddq_f32(v1, vld1q_f32(row + 4));
    }
    v0 = vaddq_f32(v0, bias0);
    v1 = vaddq_f32(v1, bias1);
    if (relu) {
      v0 = vmaxq_f32(v0, zero);
      v1 = vmaxq_f32(v1, zero);
    }
    vst1q_f32(row, v0);
    vst1q_f32(row + 4, v1);
  }
}

const KernelSet kNeon{"neon", kMrN, kNrN, 256, 512, kernelNeon, nullptr, nullptr};
#endif

}  // namespace

const KernelSet* scalarSet() { return &kScalar; }

#if defined(__aarch64__)
const KernelSet* neonSet() { return &kNeon; }  // Advanced SIMD is mandatory on AArch64.
#else
const KernelSet* neonSet() { return nullptr; }
#endif

}  // namespace caphost::cpu
