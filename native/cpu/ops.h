// caphost's f32 CPU op kernels beyond the GEMM: elementwise, activations, softmax, norms,
// embedding gather, mean pooling, l2 normalisation and f16/bf16 casts. Row kernels live in
// a table per ISA (portable C++ in ops_generic.cc, AVX2+FMA/F16C in ops_x86.cc, compiled by
// function attribute only); ops.cc picks one per call and loops over rows.
#pragma once

#include <cstdint>

namespace caphost::cpu::ops {

using i64 = std::int64_t;

struct OpsTable {
  const char* isa;  // "avx2" | "scalar"
  void (*add)(const float* a, const float* b, float* out, i64 n);
  void (*mul)(const float* a, const float* b, float* out, i64 n);
  void (*scale)(const float* x, float* out, i64 n, float alpha);
  void (*relu)(const float* x, float* out, i64 n);
  void (*silu)(const float* x, float* out, i64 n);
  void (*geluErf)(const float* x, float* out, i64 n);
  void (*geluTanh)(const float* x, float* out, i64 n);
  void (*softmaxRow)(const float* x, float* out, i64 n);
  void (*layerNormRow)(const float* x, const float* gamma, const float* beta, float* out, i64 n, float eps);
  void (*rmsNormRow)(const float* x, const float* gamma, float* out, i64 n, float eps);
  void (*l2NormRow)(const float* x, float* out, i64 n, float eps);
  void (*accumulate)(float* dst, const float* src, i64 n);  // dst += src
  void (*f32ToF16)(const float* x, std::uint16_t* out, i64 n);
  void (*f16ToF32)(const std::uint16_t* x, float* out, i64 n);
  void (*f32ToBf16)(const float* x, std::uint16_t* out, i64 n);
  void (*bf16ToF32)(const std::uint16_t* x, float* out, i64 n);
};

const OpsTable* genericOps();
// nullptr unless this is x86-64 with AVX2 and FMA (F16C is used inside when present).
const OpsTable* x86Avx2Ops();
// "avx2" | "scalar" → table, nullptr when unknown or unsupported here.
const OpsTable* opsFor(const char* isa);
// Best for this CPU; CAPHOST_CPU_ISA=scalar (read on first use) forces the portable one.
const OpsTable* defaultOps();

// Portable scalar conversions (round to nearest even; NaN stays a quiet NaN).
std::uint16_t f32ToF16Bits(float f);
float f16BitsToF32(std::uint16_t h);
std::uint16_t f32ToBf16Bits(float f);
float bf16BitsToF32(std::uint16_t h);

// Drivers (t nullptr → default). Sizes are validated by the caller.
void add(const OpsTable* t, const float* a, const float* b, float* out, i64 rows, i64 cols, bool broadcast);
void mul(const OpsTable* t, const float* a, const float* b, float* out, i64 rows, i64 cols, bool broadcast);
void softmax(const OpsTable* t, const float* x, float* out, i64 rows, i64 cols);
void layerNorm(const OpsTable* t, const float* x, const float* gamma, const float* beta, float* out, i64 rows,
               i64 cols, float eps);
void rmsNorm(const OpsTable* t, const float* x, const float* gamma, float* out, i64 rows, i64 cols, float eps);
void l2Normalize(const OpsTable* t, const float* x, float* out, i64 rows, i64 cols, float eps);
// ids must already be checked to lie in [0, vocab).
void embedding(const float* table, const std::int32_t* ids, i64 count, float* out, i64 hidden);
// out[b, :] = mean of x[b, s, :] over s with mask[b, s] != 0; all-masked rows give zeros.
void meanPool(const OpsTable* t, const float* x, const std::int32_t* mask, float* out, i64 batch, i64 seq,
              i64 hidden);

}  // namespace caphost::cpu::ops
