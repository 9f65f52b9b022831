// Scaled dot-product attention, one block per (query row, head, batch), keys in chunks with an
// online softmax (running max and sum, output rescaled per chunk) so any key length fits in
// shared memory. Masked keys (key mask 0, or after the query's position when causal) get no
// weight; a row with every key masked gives zeros.
//
// Causal alignment: query i may see key j when j <= i + (Sk - Sq), i.e. the queries are the
// last Sq positions of the Sk keys (the same as the usual lower-triangular mask when Sq == Sk,
// and a single decoding query sees every key).
#include "device_math.cuh"
#include "kernels.h"

namespace caphost::cuda {

namespace {

constexpr int kThreads = 128, kChunk = 256;

__global__ void __launch_bounds__(kThreads)
attentionKernel(const float* __restrict__ Q, const float* __restrict__ Kt, const float* __restrict__ V,
                const std::int32_t* __restrict__ mask, float* __restrict__ out, i64 sq, i64 sk, i64 heads, i64 d,
                i64 dv, float scale, bool causal) {
  extern __shared__ float smem[];
  float* q = smem;                 // d
  float* acc = q + d;              // dv
  float* p = acc + dv;             // kChunk
  float* scratch = p + kChunk;     // 32
  const i64 i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = kThreads / 32;
  const i64 qkStride = heads * d, vStride = heads * dv;
  const float* qrow = Q + (b * sq + i) * qkStride + h * d;
  for (i64 t = threadIdx.x; t < d; t += kThreads) q[t] = qrow[t] * scale;
  for (i64 t = threadIdx.x; t < dv; t += kThreads) acc[t] = 0.0f;
  const i64 last = causal ? i + (sk - sq) : sk - 1;  // the last key this query may see
  float runMax = -INFINITY, runSum = 0.0f;
  __syncthreads();

  for (i64 j0 = 0; j0 < sk; j0 += kChunk) {
    const int n = static_cast<int>(sk - j0 < kChunk ? sk - j0 : kChunk);
    for (int jj = warp; jj < n; jj += warps) {
      const i64 j = j0 + jj;
      const bool visible = j <= last && (!mask || mask[b * sk + j] != 0);
      float s = -INFINITY;
      if (visible) {
        const float* krow = Kt + (b * sk + j) * qkStride + h * d;
        float dot = 0.0f;
        for (i64 t = lane; t < d; t += 32) dot = fmaf(q[t], krow[t], dot);
        s = dev::warpSum(dot);
      }
      if (lane == 0) p[jj] = s;
    }
    __syncthreads();
    float localMax = -INFINITY;
    for (int jj = threadIdx.x; jj < n; jj += kThreads) localMax = fmaxf(localMax, p[jj]);
    const float chunkMax = dev::blockReduce<true>(localMax, scratch);
    const float newMax = fmaxf(runMax, chunkMax);
    if (newMax == -INFINITY) {  // nothing visible yet: acc and sums stay zero
      __syncthreads();
      continue;
    }
    float localSum = 0.0f;
    for (int jj = threadIdx.x; jj < n; jj += kThreads) {
      const float e = p[jj] == -INFINITY ? 0.0f : expf(p[jj] - newMax);
      p[jj] = e;
      localSum += e;
    }
    const float chunkSum = dev::blockReduce<false>(localSum, scratch);  // its syncs publish p
    const float correction = runMax == -INFINITY ? 0.0f : expf(runMax - newMax);
    runSum = runSum * correction + chunkSum;
    runMax = newMax;
    for (i64 t = threadIdx.x; t < dv; t += kThreads) {
      float a = acc[t] * correction;
      const float* vcol = V + (b * sk + j0) * vStride + h * dv + t;
      for (int jj = 0; jj < n; ++jj) {
        const float w = p[jj];
        if (w != 0.0f) a = fmaf(w, vcol[jj * vStride], a);
      }
      acc[t] = a;
    }
    __syncthreads();
  }
  float* orow = out + (b * sq + i) * vStride + h * dv;
  const float inv = runSum > 0.0f ? 1.0f / runSum : 0.0f;
  for (i64 t = threadIdx.x; t < dv; t += kThreads) orow[t] = acc[t] * inv;
}

}  // namespace

cudaError_t launchAttention(cudaStream_t s, const AttentionArgs& a) {
  if (a.batch == 0 || a.sq == 0 || a.heads == 0) return cudaSuccess;
  const std::size_t smem = static_cast<std::size_t>(a.d + a.dv + kChunk + 32) * sizeof(float);
  if (smem > 48 * 1024 || a.heads > 65535 || a.batch > 65535 || a.sq > 2147483647) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(a.sq), static_cast<unsigned>(a.heads), static_cast<unsigned>(a.batch));
  attentionKernel<<<grid, kThreads, smem, s>>>(a.q, a.k, a.v, a.mask, a.out, a.sq, a.sk, a.heads, a.d, a.dv, a.scale,
                                               a.causal);
  return cudaGetLastError();
}

}  // namespace caphost::cuda
