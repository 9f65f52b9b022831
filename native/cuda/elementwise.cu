// Elementwise f32 ops (scale, relu, silu, gelu, add, mul) and dtype casts: grid-stride loops,
// with bias-style broadcast of b over rows for add and mul.
#include "device_math.cuh"
#include "kernels.h"

namespace caphost::cuda {

namespace {

constexpr int kThreads = 256;

unsigned gridFor(i64 n) {
  const i64 blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < (1 << 20) ? (blocks > 0 ? blocks : 1) : (1 << 20));
}

template <Unary op>
__global__ void unaryKernel(const float* __restrict__ x, float* __restrict__ out, i64 n, float alpha) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    float r;
    if constexpr (op == Unary::Scale) r = v * alpha;
    else if constexpr (op == Unary::Relu) r = v > 0.0f ? v : 0.0f;
    else if constexpr (op == Unary::Silu) r = dev::silu(v);
    else if constexpr (op == Unary::GeluErf) r = dev::geluErf(v);
    else r = dev::geluTanh(v);
    out[i] = r;
  }
}

template <Binary op>
__global__ void binaryKernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out, i64 n,
                             i64 cols, bool broadcast) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    const float y = b[broadcast ? i % cols : i];
    out[i] = op == Binary::Add ? a[i] + y : a[i] * y;
  }
}

template <typename From, typename To>
__global__ void castKernel(const From* __restrict__ x, To* __restrict__ out, i64 n) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<i64>(gridDim.x) * blockDim.x)
    out[i] = dev::fromFloat<To>(dev::toFloat(x[i]));
}

template <typename T>
__global__ void epilogueKernel(T* __restrict__ c, i64 total, i64 n, const float* __restrict__ bias, int act) {
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<i64>(gridDim.x) * blockDim.x) {
    float v = dev::toFloat(c[i]);
    if (bias) v += bias[i % n];
    c[i] = dev::fromFloat<T>(dev::activate(v, act));
  }
}

template <typename From>
cudaError_t castFrom(cudaStream_t s, const From* x, void* out, DType to, i64 n) {
  switch (to) {
    case DType::F32: castKernel<From, float><<<gridFor(n), kThreads, 0, s>>>(x, static_cast<float*>(out), n); break;
    case DType::F16: castKernel<From, __half><<<gridFor(n), kThreads, 0, s>>>(x, static_cast<__half*>(out), n); break;
    case DType::BF16:
      castKernel<From, __nv_bfloat16><<<gridFor(n), kThreads, 0, s>>>(x, static_cast<__nv_bfloat16*>(out), n);
      break;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launchUnary(cudaStream_t s, Unary op, const float* x, float* out, i64 n, float alpha) {
  if (n == 0) return cudaSuccess;
  const unsigned g = gridFor(n);
  switch (op) {
    case Unary::Scale: unaryKernel<Unary::Scale><<<g, kThreads, 0, s>>>(x, out, n, alpha); break;
    case Unary::Relu: unaryKernel<Unary::Relu><<<g, kThreads, 0, s>>>(x, out, n, alpha); break;
    case Unary::Silu: unaryKernel<Unary::Silu><<<g, kThreads, 0, s>>>(x, out, n, alpha); break;
    case Unary::GeluErf: unaryKernel<Unary::GeluErf><<<g, kThreads, 0, s>>>(x, out, n, alpha); break;
    case Unary::GeluTanh: unaryKernel<Unary::GeluTanh><<<g, kThreads, 0, s>>>(x, out, n, alpha); break;
  }
  return cudaGetLastError();
}

cudaError_t launchBinary(cudaStream_t s, Binary op, const float* a, const float* b, float* out, i64 n, i64 cols,
                         bool broadcast) {
  if (n == 0) return cudaSuccess;
  if (cols <= 0) cols = 1;
  if (op == Binary::Add) binaryKernel<Binary::Add><<<gridFor(n), kThreads, 0, s>>>(a, b, out, n, cols, broadcast);
  else binaryKernel<Binary::Mul><<<gridFor(n), kThreads, 0, s>>>(a, b, out, n, cols, broadcast);
  return cudaGetLastError();
}

cudaError_t launchEpilogue(cudaStream_t s, void* c, DType out, i64 rows, i64 n, const float* bias, int activation) {
  const i64 total = rows * n;
  if (total == 0) return cudaSuccess;
  switch (out) {
    case DType::F32: epilogueKernel<<<gridFor(total), kThreads, 0, s>>>(static_cast<float*>(c), total, n, bias, activation); break;
    case DType::F16: epilogueKernel<<<gridFor(total), kThreads, 0, s>>>(static_cast<__half*>(c), total, n, bias, activation); break;
    case DType::BF16:
      epilogueKernel<<<gridFor(total), kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(c), total, n, bias, activation);
      break;
  }
  return cudaGetLastError();
}

cudaError_t launchCast(cudaStream_t s, const void* x, DType from, void* out, DType to, i64 n) {
  if (n == 0) return cudaSuccess;
  switch (from) {
    case DType::F32: return castFrom(s, static_cast<const float*>(x), out, to, n);
    case DType::F16: return castFrom(s, static_cast<const __half*>(x), out, to, n);
    case DType::BF16: return castFrom(s, static_cast<const __nv_bfloat16*>(x), out, to, n);
  }
  return cudaErrorInvalidValue;
}

}  // namespace caphost::cuda

namespace caphost::cuda {
cudaError_t checkKernelImage() {
  cudaFuncAttributes attr;
  return cudaFuncGetAttributes(&attr, unaryKernel<Unary::Relu>);
}
}  // namespace caphost::cuda
