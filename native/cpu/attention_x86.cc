// AVX-512 scaled dot-product attention for one (batch, head) pair, compiled by function
// attribute only (the addon still loads on any x86-64; attention.cc calls it only when the
// AVX-512 kernel set is the one in use). Per head it gathers K's head columns transposed
// (16 keys per vector, so a score row is whole vectors), then per block of 4 query rows:
// scores by broadcast FMAs, mask and scale, softmax in place, and P·V accumulated in
// registers with the 1/sum folded into the store. Nothing goes through the general GEMM,
// whose packing and buffers cost more than a 16- or 128-key head does.
#include "attention.h"
#include "simd_avx512.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>

namespace caphost::cpu {
namespace {

using i64 = std::int64_t;
using simd::exp16;
using simd::hmax16;
using simd::hsum16;
constexpr int kRows = 4;   // query rows per block
constexpr int kMaxNv = 4;  // value vectors (64 columns) per P·V pass

CAPHOST_AVX512 inline __mmask16 tailMask(i64 left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

// Scales a block of 16 scores, adds the key mask (0 / -inf), hides the keys past `limit`
// (the last key the row sees, causal only) and stores them.
CAPHOST_AVX512 inline void scoreStore(__m512 acc, __m512 scale, const float* keyBias, bool causal, std::int64_t limit,
                                      std::int64_t jb, float* row) {
  __m512 s = _mm512_fmadd_ps(acc, scale, _mm512_loadu_ps(keyBias + jb * 16));
  if (causal) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const std::int64_t rel = std::max<std::int64_t>(-1, std::min<std::int64_t>(limit - jb * 16, 16));
    const __mmask16 late = _mm512_cmp_epi32_mask(lane, _mm512_set1_epi32(static_cast<int>(rel)), _MM_CMPINT_NLE);
    s = _mm512_mask_mov_ps(s, late, _mm512_set1_ps(-std::numeric_limits<float>::infinity()));
  }
  _mm512_storeu_ps(row + jb * 16, s);
}

// A 64-byte aligned float buffer that only grows: a vector's storage would let 512-bit loads
// straddle cache lines.
class Floats {
 public:
  Floats() = default;
  Floats(const Floats&) = delete;
  Floats& operator=(const Floats&) = delete;
  ~Floats() { std::free(data_); }
  float* get(i64 count) {
    if (count > size_) {
      std::free(data_);
      data_ = nullptr;
      size_ = 0;
      const std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data_ == nullptr) throw std::bad_alloc();
      size_ = count;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  i64 size_ = 0;
};

struct Scratch {
  Floats kT;       // [headDim][nKeys16]
  Floats scores;   // [kRows][nKeys16]
  Floats keyBias;  // [nKeys16]: 0 for a visible key, -inf for a masked or padding one
  Floats v;        // [seqK][valueDim rounded up to 16]: the head's V columns, contiguous (strided rows thrash L1)
};

// out rows [i0, i0 + rows) (at most kRows), value columns [c0, c0 + 16 * NV) with the last
// vector masked by `last`: sum_j P[r][j] V[j] / sum_r.
template <int NV>
CAPHOST_AVX512 void pvBlock(const float* p, i64 ld, const float* vb, i64 ldvIn, i64 ldv, i64 seqK, i64 c0,
                            __mmask16 last, const float* inv, float* ob, i64 i0, int rows) {
  __m512 acc[kRows][NV];
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_setzero_ps();
  for (i64 j = 0; j < seqK; ++j) {
    __m512 v[NV];
    const float* row = vb + j * ldvIn + c0;
    for (int c = 0; c < NV; ++c)
      v[c] = c == NV - 1 ? _mm512_maskz_loadu_ps(last, row + 16 * c) : _mm512_loadu_ps(row + 16 * c);
    for (int r = 0; r < kRows; ++r) {
      const __m512 pr = _mm512_set1_ps(p[r * ld + j]);
      for (int c = 0; c < NV; ++c) acc[r][c] = _mm512_fmadd_ps(pr, v[c], acc[r][c]);
    }
  }
  // Constant bounds throughout (the row guard inside): a runtime index into acc would make GCC
  // keep the accumulators in memory and store them on every step of the loop above.
#pragma GCC unroll 4
  for (int r = 0; r < kRows; ++r) {
    if (r >= rows) break;
    const __m512 s = _mm512_set1_ps(inv[r]);
    float* out = ob + (i0 + r) * ldv + c0;
    for (int c = 0; c < NV; ++c) {
      const __m512 o = _mm512_mul_ps(acc[r][c], s);
      if (c == NV - 1) _mm512_mask_storeu_ps(out + 16 * c, last, o);
      else _mm512_storeu_ps(out + 16 * c, o);
    }
  }
}

CAPHOST_AVX512 void head(const AttentionShape& s, const float* qb, i64 ldq, const float* kb, const float* vb, i64 ldv,
                         const std::int32_t* mask, bool causal, float scale, float* ob, Scratch& sc) {
  const i64 seqQ = s.seqQ, seqK = s.seqK, hd = s.headDim, vd = s.valueDim;
  const i64 blocks = (seqK + 15) / 16, ld = blocks * 16;
  float* kT = sc.kT.get(hd * ld);
  float* p = sc.scores.get(kRows * ld);
  float* keyBias = sc.keyBias.get(ld);
  const float negInf = -std::numeric_limits<float>::infinity();
  for (i64 j = 0; j < ld; ++j) keyBias[j] = j < seqK && (mask == nullptr || mask[j] != 0) ? 0.0f : negInf;

  // K's head columns, transposed: kT[d][j] = K[j][d], padding keys zero.
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i stride = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(ldq)));
  for (i64 jb = 0; jb < blocks; ++jb) {
    const __mmask16 m = tailMask(seqK - jb * 16);
    const float* base = kb + jb * 16 * ldq;
    for (i64 d = 0; d < hd; ++d)
      _mm512_storeu_ps(kT + d * ld + jb * 16,
                       _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, stride, base + d, 4));
  }

  // Long key runs: V's rows (a stride of heads * valueDim apart) would map onto a few L1 sets
  // and be read again from L2 for every block of query rows; a contiguous copy stays in L1.
  const bool copyV = seqK > 32;
  const i64 vd16 = (vd + 15) / 16 * 16;
  const float* vp = vb;
  i64 ldvp = ldv;
  if (copyV) {
    float* dst = sc.v.get(seqK * vd16);
    for (i64 j = 0; j < seqK; ++j) std::copy(vb + j * ldv, vb + j * ldv + vd, dst + j * vd16);
    vp = dst;
    ldvp = vd16;
  }

  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512 vNegInf = _mm512_set1_ps(negInf);
  for (i64 i0 = 0; i0 < seqQ; i0 += kRows) {
    const int rows = static_cast<int>(std::min<i64>(kRows, seqQ - i0));
    // Rows past the end repeat the last one: computed, never stored.
    const float* q[kRows];
    for (int r = 0; r < kRows; ++r) q[r] = qb + std::min<i64>(i0 + r, seqQ - 1) * ldq;

    i64 jb = 0;
    // Two key blocks at once: each broadcast of q feeds two FMAs, and eight chains hide the latency.
    for (; jb + 2 <= blocks; jb += 2) {
      __m512 a[kRows], b[kRows];
      for (int r = 0; r < kRows; ++r) a[r] = b[r] = _mm512_setzero_ps();
      const float* kt = kT + jb * 16;
      for (i64 d = 0; d < hd; ++d) {
        const __m512 k0 = _mm512_loadu_ps(kt + d * ld), k1 = _mm512_loadu_ps(kt + d * ld + 16);
        for (int r = 0; r < kRows; ++r) {
          const __m512 qv = _mm512_set1_ps(q[r][d]);
          a[r] = _mm512_fmadd_ps(qv, k0, a[r]);
          b[r] = _mm512_fmadd_ps(qv, k1, b[r]);
        }
      }
      for (int r = 0; r < kRows; ++r) {
        const i64 limit = std::min<i64>(i0 + r, seqQ - 1) + (seqK - seqQ);
        scoreStore(a[r], vscale, keyBias, causal, limit, jb, p + r * ld);
        scoreStore(b[r], vscale, keyBias, causal, limit, jb + 1, p + r * ld);
      }
    }
    if (jb < blocks) {
      // One block left: split d over two accumulators per row instead.
      __m512 a[kRows], b[kRows];
      for (int r = 0; r < kRows; ++r) a[r] = b[r] = _mm512_setzero_ps();
      const float* kt = kT + jb * 16;
      i64 d = 0;
      for (; d + 2 <= hd; d += 2) {
        const __m512 k0 = _mm512_loadu_ps(kt + d * ld), k1 = _mm512_loadu_ps(kt + (d + 1) * ld);
        for (int r = 0; r < kRows; ++r) {
          a[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d]), k0, a[r]);
          b[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d + 1]), k1, b[r]);
        }
      }
      if (d < hd) {
        const __m512 k0 = _mm512_loadu_ps(kt + d * ld);
        for (int r = 0; r < kRows; ++r) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d]), k0, a[r]);
      }
      for (int r = 0; r < kRows; ++r)
        scoreStore(_mm512_add_ps(a[r], b[r]), vscale, keyBias, causal, std::min<i64>(i0 + r, seqQ - 1) + (seqK - seqQ), jb,
                   p + r * ld);
    }

    // Softmax of each row in place; inv holds 1/sum, 0 for a row with no visible key.
    float inv[kRows];
    for (int r = 0; r < kRows; ++r) {
      float* row = p + r * ld;
      __m512 mx = vNegInf;
      for (i64 jb = 0; jb < blocks; ++jb) {
        const __m512 x = _mm512_loadu_ps(row + jb * 16);
        mx = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(x, mx, _CMP_GT_OQ), x);
      }
      const float rowMax = hmax16(mx);
      if (rowMax == negInf) {
        inv[r] = 0.0f;
        for (i64 j = 0; j < ld; ++j) row[j] = 0.0f;
        continue;
      }
      const __m512 m = _mm512_set1_ps(rowMax);
      __m512 sum = _mm512_setzero_ps();
      for (i64 jb = 0; jb < blocks; ++jb) {
        const __m512 x = _mm512_loadu_ps(row + jb * 16);
        const __m512 e = exp16(_mm512_sub_ps(x, m));  // masked keys: exp(-inf) = 0
        _mm512_storeu_ps(row + jb * 16, e);
        sum = _mm512_add_ps(sum, e);
      }
      inv[r] = 1.0f / hsum16(sum);
    }

    for (i64 c0 = 0; c0 < vd; c0 += 16 * kMaxNv) {
      const i64 cols = std::min<i64>(16 * kMaxNv, vd - c0);
      const int nv = static_cast<int>((cols + 15) / 16);
      const __mmask16 last = tailMask(cols - 16 * (nv - 1));
      switch (nv) {
        case 1: pvBlock<1>(p, ld, vp, ldvp, ldv, seqK, c0, last, inv, ob, i0, rows); break;
        case 2: pvBlock<2>(p, ld, vp, ldvp, ldv, seqK, c0, last, inv, ob, i0, rows); break;
        case 3: pvBlock<3>(p, ld, vp, ldvp, ldv, seqK, c0, last, inv, ob, i0, rows); break;
        default: pvBlock<4>(p, ld, vp, ldvp, ldv, seqK, c0, last, inv, ob, i0, rows); break;
      }
    }
  }
}

}  // namespace

bool attentionAvx512Supported(const AttentionShape& s) {
  __builtin_cpu_init();
  // The gather's offsets are 32-bit: 15 rows of K must lie within 2^31 bytes.
  const i64 ldq = s.heads * s.headDim;
  return __builtin_cpu_supports("avx512f") && ldq * 15 * 4 < (i64{1} << 31);
}

void attentionHeadAvx512(const AttentionShape& s, const float* q, const float* key, const float* v,
                         const std::int32_t* keyMask, bool causal, float scale, float* out, std::int64_t task) {
  thread_local Scratch scratch;
  const i64 ldq = s.heads * s.headDim, ldv = s.heads * s.valueDim;
  const i64 b = task / s.heads, h = task % s.heads;
  head(s, q + b * s.seqQ * ldq + h * s.headDim, ldq, key + b * s.seqK * ldq + h * s.headDim,
       v + b * s.seqK * ldv + h * s.valueDim, ldv, keyMask != nullptr ? keyMask + b * s.seqK : nullptr, causal, scale,
       out + b * s.seqQ * ldv + h * s.valueDim, scratch);
}

}  // namespace caphost::cpu

#else

namespace caphost::cpu {
bool attentionAvx512Supported(const AttentionShape&) { return false; }
void attentionHeadAvx512(const AttentionShape&, const float*, const float*, const float*, const std::int32_t*, bool,
                         float, float*, std::int64_t) {}
}  // namespace caphost::cpu

#endif
