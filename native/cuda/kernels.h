// Host-callable launchers of the CUDA kernels, one per op family. They enqueue on `stream` and
// return the launch error (cudaSuccess when enqueued); shapes are already validated by the
// host and flattened here to the few numbers each kernel needs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace caphost::cuda {

using i64 = std::int64_t;

enum class Unary { Scale, Relu, Silu, GeluErf, GeluTanh };
enum class Binary { Add, Mul };
enum class RowOp { Softmax, LayerNorm, RmsNorm, L2Norm };
// Storage types the kernels read and write; values match ch_dtype.
enum class DType { F32 = 0, F16 = 1, BF16 = 2 };

cudaError_t launchUnary(cudaStream_t s, Unary op, const float* x, float* out, i64 n, float alpha);
// b has n elements, or `cols` when broadcast over rows.
cudaError_t launchBinary(cudaStream_t s, Binary op, const float* a, const float* b, float* out, i64 n, i64 cols,
                         bool broadcast);
// gamma/beta may be null when the op has none.
cudaError_t launchRows(cudaStream_t s, RowOp op, const float* x, const float* gamma, const float* beta, float* out,
                       i64 rows, i64 cols, float eps);
// flags: the stream's device flag words (see ch_stream::deviceFlags).
cudaError_t launchEmbedding(cudaStream_t s, const float* table, i64 vocab, i64 hidden, const std::int32_t* ids,
                            i64 count, float* out, int* flags);
cudaError_t launchMeanPool(cudaStream_t s, const float* x, const std::int32_t* mask, float* out, i64 batch, i64 seq,
                           i64 hidden);
cudaError_t launchCast(cudaStream_t s, const void* x, DType from, void* out, DType to, i64 n);

struct GemmArgs {
  const void* a;
  const void* b;
  const float* bias;  // [N] or null
  void* c;
  DType in;           // a and b
  DType out;          // f32 or `in`
  i64 batch, m, n, k;
  i64 strideA, strideB, strideC;  // elements between batches (strideB 0: b shared)
  bool transA, transB;
  float alpha;
  int activation;     // ch_activation
};
// Picks the tensor-core kernel for f16 (and bf16 from sm_80) and the tiled SIMT kernel
// otherwise; `compute` is major*10+minor of the stream's device.
cudaError_t launchGemm(cudaStream_t s, const GemmArgs& g, int compute);
cudaError_t launchGemmSimt(cudaStream_t s, const GemmArgs& g);
// In place on c (rows x n, dtype `out`): c = act(c + bias[col]); for GEMMs that had no fused epilogue.
cudaError_t launchEpilogue(cudaStream_t s, void* c, DType out, i64 rows, i64 n, const float* bias, int activation);
cudaError_t launchGemmTensorCore(cudaStream_t s, const GemmArgs& g);

struct AttentionArgs {
  const float* q;
  const float* k;
  const float* v;
  const std::int32_t* mask;  // [B, Sk] or null
  float* out;
  i64 batch, sq, sk, heads, d, dv;
  float scale;
  bool causal;
};
// cudaErrorInvalidValue when the head sizes need more shared memory than a block has.
cudaError_t launchAttention(cudaStream_t s, const AttentionArgs& a);

}  // namespace caphost::cuda

namespace caphost::cuda {
// cudaSuccess when this library's kernels have an image (SASS or PTX the driver can JIT) for
// the current device.
cudaError_t checkKernelImage();
}  // namespace caphost::cuda
