// The tiled SIMT GEMM: f32 (and bf16 on devices without bf16 tensor cores), 64x64 tiles of
// C per block, 16-deep slices of K in shared memory, 4x4 outputs per thread, f32 accumulation,
// fused alpha, bias and activation. Transposes change only how tiles are read from global
// memory; shared memory always holds A as [k][m] and B as [k][n].
#include "device_math.cuh"
#include "kernels.h"

namespace caphost::cuda {

namespace {

constexpr int BM = 64, BN = 64, BK = 16, kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
gemmSimt(const T* __restrict__ A, const T* __restrict__ B, const float* __restrict__ bias, void* __restrict__ C,
         bool outF32, i64 M, i64 N, i64 K, i64 strideA, i64 strideB, i64 strideC, bool transA, bool transB,
         float alpha, int act) {
  __shared__ float sA[BK][BM + 1];
  __shared__ float sB[BK][BN + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const i64 m0 = static_cast<i64>(blockIdx.y) * BM, n0 = static_cast<i64>(blockIdx.x) * BN;
  const i64 batch = blockIdx.z;
  A += batch * strideA;
  B += batch * strideB;

  float acc[4][4] = {};
  for (i64 k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int idx = tid + e * kThreads;
      int m, k;
      if (!transA) { m = idx / BK; k = idx % BK; }
      else { k = idx / BM; m = idx % BM; }
      const i64 gm = m0 + m, gk = k0 + k;
      float v = 0.0f;
      if (gm < M && gk < K) v = dev::toFloat(transA ? A[gk * M + gm] : A[gm * K + gk]);
      sA[k][m] = v;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int idx = tid + e * kThreads;
      int n, k;
      if (!transB) { k = idx / BN; n = idx % BN; }
      else { n = idx / BK; k = idx % BK; }
      const i64 gn = n0 + n, gk = k0 + k;
      float v = 0.0f;
      if (gn < N && gk < K) v = dev::toFloat(transB ? B[gn * K + gk] : B[gk * N + gn]);
      sB[k][n] = v;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = sA[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = sB[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const i64 m = m0 + ty + 16 * i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const i64 n = n0 + tx + 16 * j;
      if (n >= N) continue;
      float v = alpha * acc[i][j];
      if (bias) v += bias[n];
      v = dev::activate(v, act);
      const i64 at = batch * strideC + m * N + n;
      if (outF32) static_cast<float*>(C)[at] = v;
      else static_cast<T*>(C)[at] = dev::fromFloat<T>(v);
    }
  }
}

template <typename T>
cudaError_t run(cudaStream_t s, const GemmArgs& g) {
  const dim3 threads(kThreads);
  for (i64 b0 = 0; b0 < g.batch; b0 += 65535) {
    const i64 nb = g.batch - b0 < 65535 ? g.batch - b0 : 65535;
    const dim3 grid(static_cast<unsigned>((g.n + BN - 1) / BN), static_cast<unsigned>((g.m + BM - 1) / BM),
                    static_cast<unsigned>(nb));
    const i64 outSize = g.out == DType::F32 ? 4 : 2;
    gemmSimt<T><<<grid, threads, 0, s>>>(
        static_cast<const T*>(g.a) + b0 * g.strideA, static_cast<const T*>(g.b) + b0 * g.strideB, g.bias,
        static_cast<char*>(g.c) + b0 * g.strideC * outSize, g.out == DType::F32, g.m, g.n, g.k, g.strideA, g.strideB,
        g.strideC, g.transA, g.transB, g.alpha, g.activation);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t launchGemmSimt(cudaStream_t s, const GemmArgs& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return cudaSuccess;
  switch (g.in) {
    case DType::F32: return run<float>(s, g);
    case DType::BF16: return run<__nv_bfloat16>(s, g);
    case DType::F16: return run<__half>(s, g);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launchGemm(cudaStream_t s, const GemmArgs& g, int compute) {
  if (g.in == DType::F16 || (g.in == DType::BF16 && compute >= 80)) return launchGemmTensorCore(s, g);
  return launchGemmSimt(s, g);
}

}  // namespace caphost::cuda
