// The GEMM driver: dispatch, packing, cache blocking, the edge tiles, the epilogue and
// the thread split. The micro-kernels live in kernels_*.cc.
#include "gemm.h"
#include "ops.h"
#include "thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace caphost::cpu {
namespace {

using i64 = std::int64_t;

// Rows of op(A) packed per block; with the whole k block this stays in L2/L3.
constexpr int kMcBlock = 960;
constexpr int kMaxThreads = 64;
constexpr int kMaxMr = 16;  // the most rows any kernel set's tile has

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;

Buffer allocFloats(i64 count) {
  const std::size_t bytes = ((static_cast<std::size_t>(count) * sizeof(float)) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(static_cast<float*>(p));
}

inline float geluTanh(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + std::tanh(u));
}

struct Problem {
  int m, n, k;
  const float* A;
  i64 lda;
  bool transA;
  const float* B;
  i64 ldb;
  bool transB;
  float* C;
  i64 ldc;
  const float* bias;
  int activation;
  // Optional: op(B) packed once into nr-column panels per k block (packWholeB's layout).
  const float* packedB = nullptr;
};

// Packs rows [i0, i0+mc) x k [p0, p0+kc) of op(A) into mr-row micro-panels: for each p,
// mr consecutive values. Rows past the end are zero.
void packA(const Problem& pr, int i0, int mc, int p0, int kc, int mr, float* dst) {
  for (int ir = 0; ir < mc; ir += mr) {
    const int rows = std::min(mr, mc - ir);
    for (int p = 0; p < kc; ++p) {
      float* d = dst + static_cast<i64>(p) * mr;
      for (int r = 0; r < rows; ++r) {
        const i64 i = i0 + ir + r, kk = p0 + p;
        d[r] = pr.transA ? pr.A[kk * pr.lda + i] : pr.A[i * pr.lda + kk];
      }
      for (int r = rows; r < mr; ++r) d[r] = 0.0f;
    }
    dst += static_cast<i64>(kc) * mr;
  }
}

// Packs k [p0, p0+kc) x columns [j0, j0+nc) of op(B) into nr-column micro-panels.
void packB(const Problem& pr, int p0, int kc, int j0, int nc, int nr, float* dst) {
  for (int jr = 0; jr < nc; jr += nr) {
    const int cols = std::min(nr, nc - jr);
    if (!pr.transB) {
      for (int p = 0; p < kc; ++p) {
        float* d = dst + static_cast<i64>(p) * nr;
        std::memcpy(d, pr.B + (p0 + p) * pr.ldb + j0 + jr, sizeof(float) * cols);
        for (int c = cols; c < nr; ++c) d[c] = 0.0f;
      }
    } else {
      // B stored n x k (a Linear layer's [out, in] weights): read each row of it along k, so the
      // source streams through the cache; the writes stay inside this kc x nr panel (L1).
      for (int c = 0; c < cols; ++c) {
        const float* src = pr.B + static_cast<i64>(j0 + jr + c) * pr.ldb + p0;
        for (int p = 0; p < kc; ++p) dst[static_cast<i64>(p) * nr + c] = src[p];
      }
      for (int c = cols; c < nr; ++c)
        for (int p = 0; p < kc; ++p) dst[static_cast<i64>(p) * nr + c] = 0.0f;
    }
    dst += static_cast<i64>(kc) * nr;
  }
}

// A GELU over a finished tile: the kernel set's own, else the ops table's row kernels.
void applyGelu(const KernelSet& ks, int activation, float* c, i64 ldc, int rows, int cols) {
  if (ks.activate != nullptr) return ks.activate(activation, c, ldc, rows, cols);
  const ops::OpsTable& t = *ops::defaultOps();
  const auto fn = activation == kActGeluErf ? t.geluErf : t.geluTanh;
  for (int i = 0; i < rows; ++i) fn(c + i * ldc, c + i * ldc, cols);
}

// One tile of C: the kernel writes full tiles in place; partial ones go through `tmp`. A comes
// packed (ap) or, when aRows is set, in place (the tile's row pointers; rows past the end repeat
// the last one, whose results the partial-tile path drops).
void tile(const KernelSet& ks, const Problem& pr, int kc, const float* ap, const float* const* aRows, const float* bp,
          int i, int j, bool first, bool last, float* tmp) {
  const int rows = std::min(ks.mr, pr.m - i), cols = std::min(ks.nr, pr.n - j);
  float* c = pr.C + static_cast<i64>(i) * pr.ldc + j;
  const bool relu = last && pr.activation == kActRelu;
  if (rows == ks.mr && cols == ks.nr) {
    const float* bias = last ? pr.bias + (pr.bias ? j : 0) : nullptr;
    if (aRows != nullptr) ks.kernelRows(kc, aRows, bp, c, static_cast<int>(pr.ldc), first, bias, relu);
    else ks.kernel(kc, ap, bp, c, static_cast<int>(pr.ldc), first, bias, relu);
  } else {
    if (aRows != nullptr) ks.kernelRows(kc, aRows, bp, tmp, ks.nr, true, nullptr, false);
    else ks.kernel(kc, ap, bp, tmp, ks.nr, true, nullptr, false);
    for (int r = 0; r < rows; ++r) {
      float* row = c + static_cast<i64>(r) * pr.ldc;
      for (int q = 0; q < cols; ++q) {
        float v = tmp[r * ks.nr + q] + (first ? 0.0f : row[q]);
        if (last && pr.bias != nullptr) v += pr.bias[j + q];
        if (relu && v < 0.0f) v = 0.0f;
        row[q] = v;
      }
    }
  }
  if (last && (pr.activation == kActGeluTanh || pr.activation == kActGeluErf)) applyGelu(ks, pr.activation, c, pr.ldc, rows, cols);
}

// C rows [mBegin, mEnd) x columns [nBegin, nEnd), single-threaded.
void run(const KernelSet& ks, const Problem& pr, int mBegin, int mEnd, int nBegin, int nEnd) {
  if (mBegin >= mEnd || nBegin >= nEnd) return;
  const int kcMax = std::min(ks.kc, pr.k);
  const int mcMax = std::min(kMcBlock, mEnd - mBegin), ncMax = std::min(ks.nc, nEnd - nBegin);
  const int mcPad = (mcMax + ks.mr - 1) / ks.mr * ks.mr, ncPad = (ncMax + ks.nr - 1) / ks.nr * ks.nr;
  // Untransposed A is read in place by kernels that can (no packing pass over it).
  const bool direct = !pr.transA && ks.kernelRows != nullptr;
  Buffer aPack = allocFloats(direct ? 0 : static_cast<i64>(mcPad) * kcMax);
  Buffer bPack = allocFloats(pr.packedB != nullptr ? 0 : static_cast<i64>(ncPad) * kcMax);
  Buffer tmp = allocFloats(static_cast<i64>(ks.mr) * ks.nr);
  const float* rows[kMaxMr];
  for (int i0 = mBegin; i0 < mEnd; i0 += kMcBlock) {
    const int mc = std::min(kMcBlock, mEnd - i0);
    for (int p0 = 0; p0 < pr.k; p0 += ks.kc) {
      const int kc = std::min(ks.kc, pr.k - p0);
      const bool first = p0 == 0, last = p0 + kc == pr.k;
      if (!direct) packA(pr, i0, mc, p0, kc, ks.mr, aPack.get());
      for (int j0 = nBegin; j0 < nEnd; j0 += ks.nc) {
        const int nc = std::min(ks.nc, nEnd - j0);
        // Prepacked: the k block's panels start at p0 * nPad, panel j at j * kc (j0 is a multiple of nr).
        const float* bp = pr.packedB != nullptr
                              ? pr.packedB + static_cast<i64>(p0) * ((pr.n + ks.nr - 1) / ks.nr * ks.nr) + static_cast<i64>(j0) * kc
                              : (packB(pr, p0, kc, j0, nc, ks.nr, bPack.get()), bPack.get());
        for (int ir = 0; ir < mc; ir += ks.mr) {
          const float* ap = aPack.get() + static_cast<i64>(ir) * kc;
          if (direct) {
            for (int r = 0; r < ks.mr; ++r) rows[r] = pr.A + std::min<i64>(i0 + ir + r, pr.m - 1) * pr.lda + p0;
          }
          for (int jr = 0; jr < nc; jr += ks.nr) {
            tile(ks, pr, kc, ap, direct ? rows : nullptr, bp + static_cast<i64>(jr) * kc, i0 + ir, j0 + jr, first, last,
                 tmp.get());
          }
        }
      }
    }
  }
}

// Runs a problem over up to `threads` threads: M split in whole micro-tiles when there are
// enough, else N (in whole nr panels, which prepacked B relies on).
void split(const KernelSet& ks, const Problem& pr, int threads) {
  const int m = pr.m, n = pr.n;
  const int mTiles = (m + ks.mr - 1) / ks.mr, nTiles = (n + ks.nr - 1) / ks.nr;
  const bool splitM = mTiles >= nTiles || mTiles >= threads;
  const int tiles = splitM ? mTiles : nTiles;
  // Below ~2M multiply-adds (tens of microseconds) waking a pool thread costs more than it
  // saves, and far more on an oversubscribed machine: small products run on the caller alone.
  constexpr double kMinParallelMacs = 1 << 21;
  const bool small = static_cast<double>(m) * n * pr.k < kMinParallelMacs;
  const int workers = small ? 1 : std::max(1, std::min({threads, tiles, kMaxThreads}));
  if (workers == 1) return run(ks, pr, 0, m, 0, n);
  parallelFor(workers, workers, [&](std::int64_t w) {
    const int t0 = static_cast<int>(static_cast<i64>(tiles) * w / workers);
    const int t1 = static_cast<int>(static_cast<i64>(tiles) * (w + 1) / workers);
    const int unit = splitM ? ks.mr : ks.nr, limit = splitM ? m : n;
    const int b = std::min(t0 * unit, limit), e = std::min(t1 * unit, limit);
    if (splitM) run(ks, pr, b, e, 0, n);
    else run(ks, pr, 0, m, b, e);
  });
}

// k == 0: C = act(bias), or act(0).
void fillEpilogue(const Problem& pr) {
  for (int i = 0; i < pr.m; ++i) {
    float* row = pr.C + static_cast<i64>(i) * pr.ldc;
    for (int j = 0; j < pr.n; ++j) {
      float v = pr.bias ? pr.bias[j] : 0.0f;
      if (pr.activation == kActRelu && v < 0.0f) v = 0.0f;
      if (pr.activation == kActGeluTanh) v = geluTanh(v);
      if (pr.activation == kActGeluErf) v = 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f));
      row[j] = v;
    }
  }
}

const KernelSet* bestSet() {
  if (const KernelSet* ks = x86Avx512Set()) return ks;
  if (const KernelSet* ks = x86Avx2Set()) return ks;
  if (const KernelSet* ks = neonSet()) return ks;
  return scalarSet();
}

}  // namespace

const KernelSet* kernelSetFor(const char* isa) {
  if (isa == nullptr) return nullptr;
  const std::string name(isa);
  if (name == "avx512f") return x86Avx512Set();
  if (name == "avx512f-12x32") return x86Avx512Set12x32();
  if (name == "avx2") return x86Avx2Set();
  if (name == "neon") return neonSet();
  if (name == "scalar") return scalarSet();
  return nullptr;
}

const KernelSet* defaultKernelSet() {
  static const KernelSet* chosen = [] {
    const char* forced = std::getenv("CAPHOST_CPU_ISA");
    if (forced != nullptr && *forced != '\0') {
      if (const KernelSet* ks = kernelSetFor(forced)) return ks;
    }
    return bestSet();
  }();
  return chosen;
}

void sgemm(const KernelSet* ks, int m, int n, int k, const float* A, int lda, bool transA, const float* B,
           int ldb, bool transB, float* C, int ldc, const float* bias, int activation, int threads) {
  if (m < 0 || n < 0 || k < 0) throw std::invalid_argument("sgemm: m, n and k must be >= 0");
  if (activation < kActNone || activation > kActGeluErf)
    throw std::invalid_argument("sgemm: activation must be 0, 1, 2 or 3");
  if (ldc < std::max(n, 1)) throw std::invalid_argument("sgemm: ldc is smaller than n");
  if (lda < std::max(transA ? m : k, 1)) throw std::invalid_argument("sgemm: lda is too small");
  if (ldb < std::max(transB ? k : n, 1)) throw std::invalid_argument("sgemm: ldb is too small");
  if (m == 0 || n == 0) return;
  const Problem pr{m, n, k, A, lda, transA, B, ldb, transB, C, ldc, bias, activation};
  if (k == 0) return fillEpilogue(pr);
  if (ks == nullptr) ks = defaultKernelSet();

  split(*ks, pr, threads);
}

std::shared_ptr<float> packWholeB(const KernelSet* ks, int n, int k, const float* B, int ldb, bool transB) {
  if (ks == nullptr) ks = defaultKernelSet();
  const i64 nPad = (static_cast<i64>(n) + ks->nr - 1) / ks->nr * ks->nr;
  // Aligned like the per-call panels: the micro-kernels load B with aligned loads.
  std::shared_ptr<float> out(allocFloats(nPad * k).release(), [](float* p) { std::free(p); });
  const Problem pr{0, n, k, nullptr, 0, false, B, ldb, transB, nullptr, 0, nullptr, kActNone};
  for (int p0 = 0; p0 < k; p0 += ks->kc) {
    const int kc = std::min(ks->kc, k - p0);
    packB(pr, p0, kc, 0, n, ks->nr, out.get() + static_cast<i64>(p0) * nPad);
  }
  return out;
}

void sgemmPacked(const KernelSet* ks, int m, int n, int k, const float* A, int lda, bool transA, const float* packedB,
                 float* C, int ldc, const float* bias, int activation, int threads) {
  if (ks == nullptr) ks = defaultKernelSet();
  if (m == 0 || n == 0 || k == 0) throw std::invalid_argument("sgemmPacked: empty product");
  Problem pr{m, n, k, A, lda, transA, nullptr, 0, false, C, ldc, bias, activation};
  pr.packedB = packedB;
  split(*ks, pr, threads);
}

}  // namespace caphost::cpu

void caphost_sgemm(int m, int n, int k, const float* A, int lda, bool transA, const float* B, int ldb,
                   bool transB, float* C, int ldc, const float* bias, int activation, int threads) {
  caphost::cpu::sgemm(nullptr, m, n, k, A, lda, transA, B, ldb, transB, C, ldc, bias, activation, threads);
}
