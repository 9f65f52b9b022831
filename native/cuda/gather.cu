// Embedding gather (with the out-of-range id flag the stream reads at synchronize) and masked
// mean pooling.
#include "device_math.cuh"
#include "kernels.h"

namespace caphost::cuda {

namespace {

// One block per id; an id outside [0, vocab) zero-fills its row and records itself (the first
// one wins) in flags: [0] = 1, [1] = id, [2] = vocab.
__global__ void embeddingKernel(const float* __restrict__ table, i64 vocab, i64 hidden,
                                const std::int32_t* __restrict__ ids, float* __restrict__ out, int* flags) {
  const i64 row = blockIdx.x;
  const std::int32_t id = ids[row];
  float* dst = out + row * hidden;
  if (id < 0 || id >= vocab) {
    if (threadIdx.x == 0 && atomicCAS(&flags[0], 0, 1) == 0) {
      flags[1] = id;
      flags[2] = static_cast<int>(vocab);
    }
    for (i64 i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = 0.0f;
    return;
  }
  const float* src = table + static_cast<i64>(id) * hidden;
  for (i64 i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = src[i];
}

// grid: (hidden slices, batch); each thread walks the sequence for one hidden index.
__global__ void meanPoolKernel(const float* __restrict__ x, const std::int32_t* __restrict__ mask,
                               float* __restrict__ out, i64 seq, i64 hidden) {
  const i64 h = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x;
  const i64 b = blockIdx.y;
  if (h >= hidden) return;
  float sum = 0.0f;
  i64 count = 0;
  for (i64 t = 0; t < seq; ++t) {
    if (mask[b * seq + t] != 0) {
      sum += x[(b * seq + t) * hidden + h];
      ++count;
    }
  }
  out[b * hidden + h] = count ? sum / static_cast<float>(count) : 0.0f;
}

}  // namespace

cudaError_t launchEmbedding(cudaStream_t s, const float* table, i64 vocab, i64 hidden, const std::int32_t* ids,
                            i64 count, float* out, int* flags) {
  if (count == 0) return cudaSuccess;
  const int threads = hidden <= 128 ? 32 : hidden <= 512 ? 128 : 256;
  constexpr i64 kMaxGrid = 2147483647;
  for (i64 r0 = 0; r0 < count; r0 += kMaxGrid) {
    const i64 n = count - r0 < kMaxGrid ? count - r0 : kMaxGrid;
    embeddingKernel<<<static_cast<unsigned>(n), threads, 0, s>>>(table, vocab, hidden, ids + r0, out + r0 * hidden,
                                                                  flags);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

cudaError_t launchMeanPool(cudaStream_t s, const float* x, const std::int32_t* mask, float* out, i64 batch, i64 seq,
                           i64 hidden) {
  if (batch == 0 || hidden == 0) return cudaSuccess;
  constexpr int kThreads = 128;
  for (i64 b0 = 0; b0 < batch; b0 += 65535) {
    const i64 nb = batch - b0 < 65535 ? batch - b0 : 65535;
    dim3 grid(static_cast<unsigned>((hidden + kThreads - 1) / kThreads), static_cast<unsigned>(nb));
    meanPoolKernel<<<grid, kThreads, 0, s>>>(x + b0 * seq * hidden, mask + b0 * seq, out + b0 * hidden, seq, hidden);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace caphost::cuda
