#include "attention.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gemm.h"
#include "thread_pool.h"

namespace caphost::cpu {

void attention(const ops::OpsTable& k, const AttentionShape& s, const float* q, const float* key, const float* v,
               const std::int32_t* keyMask, bool causal, float scale, float* out, int threads) {
  using i64 = std::int64_t;
  const i64 ldq = s.heads * s.headDim, ldv = s.heads * s.valueDim;
  const KernelSet* ks = defaultKernelSet();
  // Small attentions (short sequences) run on the caller: a pool hand-off costs more than them.
  const double macs = static_cast<double>(s.batch) * s.heads * s.seqQ * s.seqK * (s.headDim + s.valueDim);
  const int workers = macs < (1 << 21) ? 1 : threads;
  // The AVX-512 kernel goes with the AVX-512 GEMM kernels (CAPHOST_CPU_ISA=avx2 or scalar turns both off).
  if (std::string(ks->isa).rfind("avx512f", 0) == 0 && attentionAvx512Supported(s)) {
    parallelFor(s.batch * s.heads, workers, [&](i64 task) {
      attentionHeadAvx512(s, q, key, v, keyMask, causal, scale, out, task);
    });
    return;
  }
  parallelFor(s.batch * s.heads, workers, [&](i64 task) {
    const i64 b = task / s.heads, h = task % s.heads;
    thread_local std::vector<float> scores;
    scores.resize(static_cast<std::size_t>(s.seqQ * s.seqK));
    float* p = scores.data();
    const float* qb = q + b * s.seqQ * ldq + h * s.headDim;
    const float* kb = key + b * s.seqK * ldq + h * s.headDim;
    const float* vb = v + b * s.seqK * ldv + h * s.valueDim;
    float* ob = out + b * s.seqQ * ldv + h * s.valueDim;
    sgemm(ks, static_cast<int>(s.seqQ), static_cast<int>(s.seqK), static_cast<int>(s.headDim), qb,
          static_cast<int>(ldq), false, kb, static_cast<int>(ldq), true, p, static_cast<int>(s.seqK), nullptr,
          kActNone, 1);
    const std::int32_t* mask = keyMask != nullptr ? keyMask + b * s.seqK : nullptr;
    for (i64 i = 0; i < s.seqQ; ++i) {
      float* row = p + i * s.seqK;
      const i64 visibleEnd = causal ? std::min<i64>(s.seqK, i + (s.seqK - s.seqQ) + 1) : s.seqK;
      i64 visible = 0;
      for (i64 j = 0; j < s.seqK; ++j) {
        const bool keep = j < visibleEnd && (mask == nullptr || mask[j] != 0);
        row[j] = keep ? row[j] * scale : -INFINITY;
        visible += keep ? 1 : 0;
      }
      if (visible == 0) std::memset(row, 0, sizeof(float) * s.seqK);
      else k.softmaxRow(row, row, s.seqK);
    }
    sgemm(ks, static_cast<int>(s.seqQ), static_cast<int>(s.valueDim), static_cast<int>(s.seqK), p,
          static_cast<int>(s.seqK), false, vb, static_cast<int>(ldv), false, ob, static_cast<int>(ldv), nullptr,
          kActNone, 1);
  });
}

}  // namespace caphost::cpu
