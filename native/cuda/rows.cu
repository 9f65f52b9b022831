// Last-axis row ops: softmax, layernorm, rmsnorm, l2 normalisation. One block per row; the
// row is read from global memory once per pass (it stays in L1/L2 for rows of model widths).
#include "device_math.cuh"
#include "kernels.h"

namespace caphost::cuda {

namespace {

template <RowOp op>
__global__ void rowKernel(const float* __restrict__ x, const float* __restrict__ gamma,
                          const float* __restrict__ beta, float* __restrict__ out, i64 cols, float eps) {
  __shared__ float scratch[32];
  const float* row = x + blockIdx.x * cols;
  float* dst = out + blockIdx.x * cols;
  if constexpr (op == RowOp::Softmax) {
    float mx = -INFINITY;
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) mx = fmaxf(mx, row[i]);
    mx = dev::blockReduce<true>(mx, scratch);
    float sum = 0.0f;
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) sum += expf(row[i] - mx);
    sum = dev::blockReduce<false>(sum, scratch);
    const float inv = 1.0f / sum;
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = expf(row[i] - mx) * inv;
  } else if constexpr (op == RowOp::LayerNorm) {
    float sum = 0.0f;
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) sum += row[i];
    const float mean = dev::blockReduce<false>(sum, scratch) / static_cast<float>(cols);
    float var = 0.0f;
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) {
      const float d = row[i] - mean;
      var += d * d;
    }
    var = dev::blockReduce<false>(var, scratch) / static_cast<float>(cols);
    const float rstd = rsqrtf(var + eps);
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) dst[i] = (row[i] - mean) * rstd * gamma[i] + beta[i];
  } else {
    float ss = 0.0f;
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) ss += row[i] * row[i];
    ss = dev::blockReduce<false>(ss, scratch);
    float r;
    if constexpr (op == RowOp::RmsNorm) r = rsqrtf(ss / static_cast<float>(cols) + eps);
    else r = 1.0f / fmaxf(sqrtf(ss), eps);
    for (i64 i = threadIdx.x; i < cols; i += blockDim.x) {
      const float v = row[i] * r;
      if constexpr (op == RowOp::RmsNorm) dst[i] = v * gamma[i];
      else dst[i] = v;
    }
  }
}

}  // namespace

cudaError_t launchRows(cudaStream_t s, RowOp op, const float* x, const float* gamma, const float* beta, float* out,
                       i64 rows, i64 cols, float eps) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  const int threads = cols <= 256 ? 64 : cols <= 2048 ? 256 : 512;
  // Rows beyond the grid's x limit are launched in slices.
  constexpr i64 kMaxGrid = 2147483647;
  for (i64 r0 = 0; r0 < rows; r0 += kMaxGrid) {
    const i64 n = rows - r0 < kMaxGrid ? rows - r0 : kMaxGrid;
    const float* xs = x + r0 * cols;
    float* os = out + r0 * cols;
    const auto g = static_cast<unsigned>(n);
    switch (op) {
      case RowOp::Softmax: rowKernel<RowOp::Softmax><<<g, threads, 0, s>>>(xs, gamma, beta, os, cols, eps); break;
      case RowOp::LayerNorm: rowKernel<RowOp::LayerNorm><<<g, threads, 0, s>>>(xs, gamma, beta, os, cols, eps); break;
      case RowOp::RmsNorm: rowKernel<RowOp::RmsNorm><<<g, threads, 0, s>>>(xs, gamma, beta, os, cols, eps); break;
      case RowOp::L2Norm: rowKernel<RowOp::L2Norm><<<g, threads, 0, s>>>(xs, gamma, beta, os, cols, eps); break;
    }
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace caphost::cuda
