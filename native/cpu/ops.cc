// Op drivers: pick the table, loop over rows, broadcast. The row kernels are in ops_*.cc.
#include "ops.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace caphost::cpu::ops {

const OpsTable* opsFor(const char* isa) {
  if (isa == nullptr) return nullptr;
  const std::string name(isa);
  if (name == "avx2") return x86Avx2Ops();
  if (name == "scalar") return genericOps();
  return nullptr;
}

const OpsTable* defaultOps() {
  static const OpsTable* chosen = [] {
    const char* forced = std::getenv("CAPHOST_CPU_ISA");
    if (forced != nullptr && std::string(forced) == "scalar") return genericOps();
    if (const OpsTable* t = x86Avx2Ops()) return t;
    return genericOps();
  }();
  return chosen;
}

namespace {
inline const OpsTable& pick(const OpsTable* t) { return t != nullptr ? *t : *defaultOps(); }

using Binary = void (*)(const float*, const float*, float*, i64);
void binary(Binary fn, const float* a, const float* b, float* out, i64 rows, i64 cols, bool broadcast) {
  if (!broadcast) return fn(a, b, out, rows * cols);
  for (i64 r = 0; r < rows; ++r) fn(a + r * cols, b, out + r * cols, cols);
}
}  // namespace

void add(const OpsTable* t, const float* a, const float* b, float* out, i64 rows, i64 cols, bool broadcast) {
  binary(pick(t).add, a, b, out, rows, cols, broadcast);
}

void mul(const OpsTable* t, const float* a, const float* b, float* out, i64 rows, i64 cols, bool broadcast) {
  binary(pick(t).mul, a, b, out, rows, cols, broadcast);
}

void softmax(const OpsTable* t, const float* x, float* out, i64 rows, i64 cols) {
  const OpsTable& k = pick(t);
  for (i64 r = 0; r < rows; ++r) k.softmaxRow(x + r * cols, out + r * cols, cols);
}

void layerNorm(const OpsTable* t, const float* x, const float* gamma, const float* beta, float* out, i64 rows,
               i64 cols, float eps) {
  const OpsTable& k = pick(t);
  for (i64 r = 0; r < rows; ++r) k.layerNormRow(x + r * cols, gamma, beta, out + r * cols, cols, eps);
}

void rmsNorm(const OpsTable* t, const float* x, const float* gamma, float* out, i64 rows, i64 cols, float eps) {
  const OpsTable& k = pick(t);
  for (i64 r = 0; r < rows; ++r) k.rmsNormRow(x + r * cols, gamma, out + r * cols, cols, eps);
}

void l2Normalize(const OpsTable* t, const float* x, float* out, i64 rows, i64 cols, float eps) {
  const OpsTable& k = pick(t);
  for (i64 r = 0; r < rows; ++r) k.l2NormRow(x + r * cols, out + r * cols, cols, eps);
}

void embedding(const float* table, const std::int32_t* ids, i64 count, float* out, i64 hidden) {
  for (i64 i = 0; i < count; ++i)
    std::memcpy(out + i * hidden, table + static_cast<i64>(ids[i]) * hidden, sizeof(float) * hidden);
}

void meanPool(const OpsTable* t, const float* x, const std::int32_t* mask, float* out, i64 batch, i64 seq,
              i64 hidden) {
  const OpsTable& k = pick(t);
  for (i64 b = 0; b < batch; ++b) {
    float* dst = out + b * hidden;
    std::memset(dst, 0, sizeof(float) * hidden);
    i64 used = 0;
    for (i64 s = 0; s < seq; ++s) {
      if (mask[b * seq + s] == 0) continue;
      k.accumulate(dst, x + (b * seq + s) * hidden, hidden);
      ++used;
    }
    if (used > 0) k.scale(dst, dst, hidden, 1.0f / static_cast<float>(used));
  }
}

}  // namespace caphost::cpu::ops
