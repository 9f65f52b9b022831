// Tensor-core GEMM for f16 and bf16 (WMMA 16x16x16, f32 accumulation): 128x128 tiles of C per
// block of 8 warps, each warp 64x32 (4x2 fragments), 32-deep K slices. Shared memory holds each
// tile in its global layout, so a transpose is only a row/col-major fragment choice; the next
// slice is loaded into registers while the current one is multiplied. Edges and unaligned
// operands load element by element with zero fill, so any M, N, K works.
#include <mma.h>

#include <type_traits>

#include "device_math.cuh"
#include "kernels.h"

namespace caphost::cuda {

namespace {

using namespace nvcuda;

constexpr int BM = 128, BN = 128, BK = 32, kThreads = 256, kPad = 8;
constexpr int kTileElems = (BM * (BK + kPad)) > (BK * (BM + kPad)) ? BM * (BK + kPad) : BK * (BM + kPad);
constexpr int kChunksPerThread = BM * BK / 8 / kThreads;  // 8 elements (16 bytes) per chunk

// Loads 8 consecutive 16-bit elements of a row-major matrix (ld elements per row) at (r, c),
// zero-filling what lies outside rmax x cmax.
__device__ __forceinline__ uint4 loadChunk(const std::uint16_t* base, i64 ld, i64 r, i64 c, i64 rmax, i64 cmax,
                                           bool vec) {
  uint4 v = make_uint4(0, 0, 0, 0);
  if (r >= rmax || c >= cmax) return v;
  const std::uint16_t* p = base + r * ld + c;
  if (vec && c + 8 <= cmax) return *reinterpret_cast<const uint4*>(p);
  std::uint16_t t[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) t[e] = c + e < cmax ? p[e] : 0;
  v.x = t[0] | (static_cast<unsigned>(t[1]) << 16);
  v.y = t[2] | (static_cast<unsigned>(t[3]) << 16);
  v.z = t[4] | (static_cast<unsigned>(t[5]) << 16);
  v.w = t[6] | (static_cast<unsigned>(t[7]) << 16);
  return v;
}

// A tile of `rows` x `cols` (cols contiguous in global memory and in shared memory, padded).
template <int rows, int cols>
struct TileLoader {
  uint4 regs[kChunksPerThread];
  __device__ __forceinline__ void load(const std::uint16_t* base, i64 ld, i64 r0, i64 c0, i64 rmax, i64 cmax,
                                       bool vec) {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int chunk = threadIdx.x + i * kThreads;
      const int r = chunk / (cols / 8), c = (chunk % (cols / 8)) * 8;
      regs[i] = loadChunk(base, ld, r0 + r, c0 + c, rmax, cmax, vec);
    }
  }
  __device__ __forceinline__ void store(std::uint16_t* smem) const {
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int chunk = threadIdx.x + i * kThreads;
      const int r = chunk / (cols / 8), c = (chunk % (cols / 8)) * 8;
      *reinterpret_cast<uint4*>(smem + r * (cols + kPad) + c) = regs[i];
    }
  }
};

template <typename T, bool TA, bool TB>
__device__ __forceinline__ void tcBody(const T* __restrict__ Ag, const T* __restrict__ Bg,
                                       const float* __restrict__ bias, void* __restrict__ C, bool outF32, i64 M,
                                       i64 N, i64 K, i64 strideA, i64 strideB, i64 strideC, bool vecA, bool vecB,
                                       float alpha, int act) {
  __shared__ __align__(128) std::uint16_t sA[kTileElems];
  __shared__ __align__(128) std::uint16_t sB[kTileElems];
  __shared__ __align__(128) float scratch[kThreads / 32][16 * 16];

  using LayoutA = std::conditional_t<TA, wmma::col_major, wmma::row_major>;
  using LayoutB = std::conditional_t<TB, wmma::col_major, wmma::row_major>;
  constexpr int ldsA = TA ? BM + kPad : BK + kPad;
  constexpr int ldsB = TB ? BK + kPad : BN + kPad;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / 4, wn = warp % 4;  // 2 x 4 warps, 64 x 32 each
  const i64 m0 = static_cast<i64>(blockIdx.y) * BM, n0 = static_cast<i64>(blockIdx.x) * BN;
  const i64 batch = blockIdx.z;
  const auto* A = reinterpret_cast<const std::uint16_t*>(Ag) + batch * strideA;
  const auto* B = reinterpret_cast<const std::uint16_t*>(Bg) + batch * strideB;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  // A: [M, K] (rows m) or, transposed, [K, M] (rows k). B: [K, N] or, transposed, [N, K].
  TileLoader<TA ? BK : BM, TA ? BM : BK> la;
  TileLoader<TB ? BN : BK, TB ? BK : BN> lb;
  auto loadSlice = [&](i64 k0) {
    if (TA) la.load(A, M, k0, m0, K, M, vecA);
    else la.load(A, K, m0, k0, M, K, vecA);
    if (TB) lb.load(B, K, n0, k0, N, K, vecB);
    else lb.load(B, N, k0, n0, K, N, vecB);
  };

  const i64 slices = (K + BK - 1) / BK;
  if (slices > 0) loadSlice(0);
  for (i64 s = 0; s < slices; ++s) {
    __syncthreads();  // the previous slice's fragments are read
    la.store(sA);
    lb.store(sB);
    __syncthreads();
    if (s + 1 < slices) loadSlice((s + 1) * BK);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LayoutA> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> fb[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int m = wm * 64 + i * 16;
        const std::uint16_t* p = TA ? sA + kk * ldsA + m : sA + m * ldsA + kk;
        wmma::load_matrix_sync(fa[i], reinterpret_cast<const T*>(p), ldsA);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int n = wn * 32 + j * 16;
        const std::uint16_t* p = TB ? sB + n * ldsB + kk : sB + kk * ldsB + n;
        wmma::load_matrix_sync(fb[j], reinterpret_cast<const T*>(p), ldsB);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
  }

  // Epilogue through a per-warp 16x16 scratch: alpha, bias, activation, bounds, dtype.
  float* sc = scratch[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(sc, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const i64 m = m0 + wm * 64 + i * 16 + e / 16, n = n0 + wn * 32 + j * 16 + e % 16;
        if (m < M && n < N) {
          float v = alpha * sc[e];
          if (bias) v += bias[n];
          v = dev::activate(v, act);
          const i64 at = batch * strideC + m * N + n;
          if (outF32) static_cast<float*>(C)[at] = v;
          else static_cast<T*>(C)[at] = dev::fromFloat<T>(v);
        }
      }
      __syncwarp();
    }
  }
}

template <typename T, bool TA, bool TB>
__global__ void __launch_bounds__(kThreads)
gemmTensorCore(const T* __restrict__ A, const T* __restrict__ B, const float* __restrict__ bias,
               void* __restrict__ C, bool outF32, i64 M, i64 N, i64 K, i64 strideA, i64 strideB, i64 strideC,
               bool vecA, bool vecB, float alpha, int act) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __trap();  // bf16 fragments need sm_80; the host runs the SIMT kernel there instead
  } else {
    tcBody<T, TA, TB>(A, B, bias, C, outF32, M, N, K, strideA, strideB, strideC, vecA, vecB, alpha, act);
  }
#else
  tcBody<T, TA, TB>(A, B, bias, C, outF32, M, N, K, strideA, strideB, strideC, vecA, vecB, alpha, act);
#endif
}

template <typename T, bool TA, bool TB>
cudaError_t run(cudaStream_t s, const GemmArgs& g) {
  const auto aligned = [](const void* p, i64 ld) {
    return ld % 8 == 0 && reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
  };
  // Batches after the first keep 16-byte alignment only when the batch stride does.
  const bool vecA = aligned(g.a, TA ? g.m : g.k) && g.strideA % 8 == 0;
  const bool vecB = aligned(g.b, TB ? g.k : g.n) && g.strideB % 8 == 0;
  const i64 outSize = g.out == DType::F32 ? 4 : 2;
  for (i64 b0 = 0; b0 < g.batch; b0 += 65535) {
    const i64 nb = g.batch - b0 < 65535 ? g.batch - b0 : 65535;
    const dim3 grid(static_cast<unsigned>((g.n + BN - 1) / BN), static_cast<unsigned>((g.m + BM - 1) / BM),
                    static_cast<unsigned>(nb));
    gemmTensorCore<T, TA, TB><<<grid, kThreads, 0, s>>>(
        static_cast<const T*>(g.a) + b0 * g.strideA, static_cast<const T*>(g.b) + b0 * g.strideB, g.bias,
        static_cast<char*>(g.c) + b0 * g.strideC * outSize, g.out == DType::F32, g.m, g.n, g.k, g.strideA, g.strideB,
        g.strideC, vecA, vecB, g.alpha, g.activation);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t runTyped(cudaStream_t s, const GemmArgs& g) {
  if (g.transA) return g.transB ? run<T, true, true>(s, g) : run<T, true, false>(s, g);
  return g.transB ? run<T, false, true>(s, g) : run<T, false, false>(s, g);
}

}  // namespace

cudaError_t launchGemmTensorCore(cudaStream_t s, const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return cudaSuccess;
  if (g.in == DType::F16) return runTyped<__half>(s, g);
  if (g.in == DType::BF16) return runTyped<__nv_bfloat16>(s, g);
  return cudaErrorInvalidValue;
}

}  // namespace caphost::cuda
