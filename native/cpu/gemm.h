// caphost's own CPU GEMM: blocked, packed, register-tiled, multi-threaded fp32 matrix
// multiply with a fused bias + activation epilogue. Row-major throughout:
//   C[m x n] = act(op(A)[m x k] . op(B)[k x n] + bias[n])
// op(A) is A (m x k, leading dimension lda) or, with transA, the transpose of A stored
// k x m. The same for B. The micro-kernel is picked once per process from the CPU's
// features (AVX-512F, AVX2+FMA, NEON, else portable C++), or per call by name.
#pragma once

#include <cstdint>
#include <memory>

namespace caphost::cpu {

enum Activation : int { kActNone = 0, kActRelu = 1, kActGeluTanh = 2, kActGeluErf = 3 };

// One register-tiled micro-kernel: computes a full MR x NR tile of C from a packed A
// micro-panel (kc steps of MR values) and a packed B micro-panel (kc steps of NR values).
//   first: overwrite C (else accumulate into it)
//   bias:  non-null on the last k block only; NR values added to every row
//   relu:  applied after the bias on the last k block only
using MicroKernel = void (*)(int kc, const float* a, const float* b, float* c, int ldc, bool first,
                             const float* bias, bool relu);
// As MicroKernel, reading A in place: a[i] points at row i of the tile in op(A) (row-major,
// untransposed), already at the k block's first column. Spares the packing of A, which costs
// as much as a fifth of a short-M GEMM's time.
using MicroKernelRows = void (*)(int kc, const float* const* a, const float* b, float* c, int ldc, bool first,
                                 const float* bias, bool relu);
// A GELU (kActGeluTanh or kActGeluErf) over a finished tile of C, while it is still in L1.
using TileActivation = void (*)(int activation, float* c, std::int64_t ldc, int rows, int cols);

struct KernelSet {
  const char* isa;  // "avx512f" | "avx512f-12x32" | "avx2" | "neon" | "scalar"
  int mr, nr;       // micro-tile
  int kc;           // k block (A micro-panel mr*kc stays in L1)
  int nc;           // n block (packed B block kc*nc stays in L2), a multiple of nr
  MicroKernel kernel;
  TileActivation activate;  // nullptr: the ops table's row kernels
  MicroKernelRows kernelRows;  // nullptr: A is always packed
};

// The kernel set for an ISA name, or nullptr when unknown or unsupported by this CPU.
const KernelSet* kernelSetFor(const char* isa);
// The best set for this CPU; CAPHOST_CPU_ISA (read on first use) may force a lower one.
const KernelSet* defaultKernelSet();

// Per-ISA kernel sets (nullptr when not compiled for this architecture).
const KernelSet* x86Avx512Set();
const KernelSet* x86Avx512Set12x32();  // the earlier 12 x 32 tile, kept as a baseline ("avx512f-12x32")
const KernelSet* x86Avx2Set();
const KernelSet* neonSet();
const KernelSet* scalarSet();

// As caphost_sgemm, with an explicit kernel set (nullptr → default).
void sgemm(const KernelSet* ks, int m, int n, int k, const float* A, int lda, bool transA,
           const float* B, int ldb, bool transB, float* C, int ldc, const float* bias, int activation,
           int threads);

// op(B) (k x n) packed once for every k block: what sgemmPacked reads instead of packing B
// per call. Worth it for weights that many calls reuse (a model's Linear layers).
std::shared_ptr<float> packWholeB(const KernelSet* ks, int n, int k, const float* B, int ldb, bool transB);
// As sgemm, with B given as packWholeB(ks, n, k, ...) made with the same kernel set.
void sgemmPacked(const KernelSet* ks, int m, int n, int k, const float* A, int lda, bool transA, const float* packedB,
                 float* C, int ldc, const float* bias, int activation, int threads);

}  // namespace caphost::cpu

// C = act(op(A)·op(B) + bias); bias nullable (length n); activation 0 none, 1 relu,
// 2 gelu (tanh form), 3 gelu (erf form); threads <= 1 runs on the calling thread. Throws std::invalid_argument
// for negative sizes or leading dimensions too small.
void caphost_sgemm(int m, int n, int k, const float* A, int lda, bool transA, const float* B, int ldb,
                   bool transB, float* C, int ldc, const float* bias, int activation, int threads);
