// encodeOp(): one op of a command list as dispatches on a compute encoder. The host has
// validated shapes, dtypes and ranges; this file binds buffers at the tensors' offsets, fills
// the argument structs (mirrors of those in kernels/*.metal, field for field) and picks the
// grid. Ops other than matmul, cast and copy are f32 (index operands i32).
#include <algorithm>
#include <cmath>
#include <string>

#include "stream_ops.h"

namespace caphost::metal {

namespace {

using u64 = std::uint64_t;
using i64 = std::int64_t;

struct UnaryArgs { u64 n; float alpha; std::int32_t op; };
struct BinaryArgs { u64 n; u64 cols; std::int32_t broadcast; std::int32_t op; };
struct CastArgs { u64 n; std::int32_t from; std::int32_t to; };
struct CopyArgs { u64 bytes; };
struct RowArgs { u64 cols; float eps; std::int32_t op; };
struct EmbeddingArgs { u64 hidden; std::int32_t vocab; };
struct MeanPoolArgs { u64 seq; u64 hidden; };
struct GemmArgs {
  u64 M, N, K, strideA, strideB, strideC;
  float alpha;
  std::int32_t act, inType, outType, transA, transB, hasBias;
};
struct AttentionArgs {
  u64 sq, sk, heads, d, dv;
  float scale;
  std::int32_t causal, hasMask;
};

constexpr NSUInteger kGroup = 256;
const char* const kOpNames[CH_OP_COUNT] = {"matmul",  "add",       "mul",     "scale",     "gelu",     "relu",
                                           "silu",    "softmax",   "layernorm", "rmsnorm", "embedding", "attention",
                                           "meanpool", "l2norm",   "cast",    "copy"};

u64 elements(const ch_tensor& t) {
  u64 n = 1;
  for (int i = 0; i < t.rank; ++i) n *= static_cast<u64>(t.shape[i]);
  return n;
}
u64 lastDim(const ch_tensor& t) { return t.rank > 0 ? static_cast<u64>(t.shape[t.rank - 1]) : 1; }
u64 dtypeSize(int d) { return d == CH_F32 || d == CH_I32 ? 4 : d == CH_U8 ? 1 : 2; }
bool isFloat(int d) { return d == CH_F32 || d == CH_F16 || d == CH_BF16; }
bool has(const ch_op& op, int i) { return op.n_inputs > i && op.inputs[i].buffer != nullptr; }

void bind(id<MTLComputeCommandEncoder> enc, const ch_tensor& t, NSUInteger index) {
  [enc setBuffer:t.buffer->buffer offset:t.offset atIndex:index];
}
template <typename Args>
void args(id<MTLComputeCommandEncoder> enc, const Args& a, NSUInteger index) {
  [enc setBytes:&a length:sizeof a atIndex:index];
}
// Grid-stride kernels: enough groups to fill the device, never more than the work.
void linear(id<MTLComputeCommandEncoder> enc, u64 n) {
  const u64 groups = std::min<u64>((n + kGroup - 1) / kGroup, 65535);
  [enc dispatchThreadgroups:MTLSizeMake(groups, 1, 1) threadsPerThreadgroup:MTLSizeMake(kGroup, 1, 1)];
}

ch_status unsupported(const ch_op& op, const std::string& what) {
  return fail(CH_ERR_UNSUPPORTED, std::string(kOpNames[op.kind]) + ": " + what + " is not supported by the Metal backend");
}

}  // namespace

ch_status encodeOp(ch_stream* st, id<MTLComputeCommandEncoder> enc, const ch_op& op) {
  if (op.kind < 0 || op.kind >= CH_OP_COUNT)
    return fail(CH_ERR_UNSUPPORTED, "op kind " + std::to_string(op.kind) + " is unknown to the Metal backend");
  const std::int32_t dev = st->device;
  const ch_tensor& x = op.inputs[0];
  const ch_tensor& out = op.output;
  auto use = [&](NSString* name) { [enc setComputePipelineState:pipeline(dev, name)]; };

  switch (op.kind) {
    case CH_OP_MATMUL: {
      const ch_tensor& b = op.inputs[1];
      if (!isFloat(x.dtype) || b.dtype != x.dtype || (out.dtype != CH_F32 && out.dtype != x.dtype) ||
          (has(op, 2) && op.inputs[2].dtype != CH_F32))
        return unsupported(op, "this dtype combination");
      GemmArgs g{};
      g.transA = (op.flags & CH_FLAG_TRANS_A) != 0;
      g.transB = (op.flags & CH_FLAG_TRANS_B) != 0;
      g.M = static_cast<u64>(g.transA ? x.shape[x.rank - 1] : x.shape[x.rank - 2]);
      g.K = static_cast<u64>(g.transA ? x.shape[x.rank - 2] : x.shape[x.rank - 1]);
      g.N = static_cast<u64>(g.transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1]);
      u64 batch = 1;
      for (int i = 0; i < out.rank - 2; ++i) batch *= static_cast<u64>(out.shape[i]);
      g.strideA = x.rank > 2 ? g.M * g.K : 0;
      g.strideB = b.rank > 2 ? g.K * g.N : 0;
      g.strideC = g.M * g.N;
      g.alpha = op.f0;
      g.act = op.i0;
      g.inType = x.dtype;
      g.outType = out.dtype;
      g.hasBias = has(op, 2);
      if (g.M == 0 || g.N == 0 || batch == 0) return CH_OK;
      use(@"gemm_any");
      bind(enc, x, 0);
      bind(enc, b, 1);
      bind(enc, g.hasBias ? op.inputs[2] : x, 2);  // a placeholder when there is no bias
      bind(enc, out, 3);
      args(enc, g, 4);
      [enc dispatchThreadgroups:MTLSizeMake((g.N + 31) / 32, (g.M + 31) / 32, batch)
          threadsPerThreadgroup:MTLSizeMake(kGroup, 1, 1)];
      return CH_OK;
    }
    case CH_OP_CAST: {
      if (!isFloat(x.dtype) || !isFloat(out.dtype)) return unsupported(op, "a cast from or to a non-float dtype");
      const u64 n = elements(x);
      if (n == 0) return CH_OK;
      use(@"cast_any");
      bind(enc, x, 0);
      bind(enc, out, 1);
      args(enc, CastArgs{n, x.dtype, out.dtype}, 2);
      linear(enc, n);
      return CH_OK;
    }
    case CH_OP_COPY: {
      const u64 bytes = elements(out) * dtypeSize(out.dtype);
      if (bytes == 0) return CH_OK;
      use(@"copy_bytes");
      bind(enc, x, 0);
      bind(enc, out, 1);
      args(enc, CopyArgs{bytes}, 2);
      linear(enc, bytes);
      return CH_OK;
    }
    default:
      break;
  }

  const int floatInputs = op.kind == CH_OP_EMBEDDING || op.kind == CH_OP_MEANPOOL ? 1
                          : op.kind == CH_OP_ATTENTION                         ? 3
                                                                               : op.n_inputs;
  for (int i = 0; i < floatInputs; ++i)
    if (has(op, i) && op.inputs[i].dtype != CH_F32) return unsupported(op, "a dtype other than f32");
  if (out.dtype != CH_F32) return unsupported(op, "an output dtype other than f32");
  const u64 n = elements(x), cols = lastDim(x), rows = cols ? n / cols : 0;

  switch (op.kind) {
    case CH_OP_ADD:
    case CH_OP_MUL: {
      if (n == 0) return CH_OK;
      const ch_tensor& b = op.inputs[1];
      use(@"binary_f32");
      bind(enc, x, 0);
      bind(enc, b, 1);
      bind(enc, out, 2);
      const BinaryArgs a{n, std::max<u64>(lastDim(b), 1), elements(b) != n, op.kind == CH_OP_ADD ? 0 : 1};
      args(enc, a, 3);
      linear(enc, n);
      return CH_OK;
    }
    case CH_OP_SCALE:
    case CH_OP_RELU:
    case CH_OP_SILU:
    case CH_OP_GELU: {
      if (n == 0) return CH_OK;
      const std::int32_t code = op.kind == CH_OP_SCALE ? 0
                                : op.kind == CH_OP_RELU ? 1
                                : op.kind == CH_OP_SILU ? 2
                                : (op.flags & CH_FLAG_GELU_TANH) ? 4
                                                                 : 3;
      use(@"unary_f32");
      bind(enc, x, 0);
      bind(enc, out, 1);
      args(enc, UnaryArgs{n, op.f0, code}, 2);
      linear(enc, n);
      return CH_OK;
    }
    case CH_OP_SOFTMAX:
    case CH_OP_LAYERNORM:
    case CH_OP_RMSNORM:
    case CH_OP_L2NORM: {
      if (rows == 0 || cols == 0) return CH_OK;
      const std::int32_t code = op.kind == CH_OP_SOFTMAX ? 0 : op.kind == CH_OP_LAYERNORM ? 1 : op.kind == CH_OP_RMSNORM ? 2 : 3;
      use(@"rows_f32");
      bind(enc, x, 0);
      bind(enc, has(op, 1) ? op.inputs[1] : x, 1);  // gamma, or a placeholder
      bind(enc, has(op, 2) ? op.inputs[2] : x, 2);  // beta, or a placeholder
      bind(enc, out, 3);
      args(enc, RowArgs{cols, op.f0, code}, 4);
      [enc dispatchThreadgroups:MTLSizeMake(rows, 1, 1) threadsPerThreadgroup:MTLSizeMake(kGroup, 1, 1)];
      return CH_OK;
    }
    case CH_OP_EMBEDDING: {
      const ch_tensor& ids = op.inputs[1];
      if (ids.dtype != CH_I32) return unsupported(op, "ids that are not i32");
      const u64 count = elements(ids);
      if (count == 0) return CH_OK;
      if (x.shape[0] > INT32_MAX) return unsupported(op, "a table of more than 2^31 rows");
      st->checkFlags = true;
      use(@"embedding_f32");
      bind(enc, x, 0);
      bind(enc, ids, 1);
      bind(enc, out, 2);
      [enc setBuffer:st->flags offset:0 atIndex:3];
      args(enc, EmbeddingArgs{cols, static_cast<std::int32_t>(x.shape[0])}, 4);
      [enc dispatchThreadgroups:MTLSizeMake(count, 1, 1) threadsPerThreadgroup:MTLSizeMake(64, 1, 1)];
      return CH_OK;
    }
    case CH_OP_MEANPOOL: {
      const u64 batch = static_cast<u64>(x.shape[0]), seq = static_cast<u64>(x.shape[1]), hidden = static_cast<u64>(x.shape[2]);
      if (batch == 0 || hidden == 0) return CH_OK;
      use(@"meanpool_f32");
      bind(enc, x, 0);
      bind(enc, op.inputs[1], 1);
      bind(enc, out, 2);
      args(enc, MeanPoolArgs{seq, hidden}, 3);
      [enc dispatchThreadgroups:MTLSizeMake((hidden + 63) / 64, batch, 1) threadsPerThreadgroup:MTLSizeMake(64, 1, 1)];
      return CH_OK;
    }
    case CH_OP_ATTENTION: {
      const ch_tensor &k = op.inputs[1], &v = op.inputs[2];
      AttentionArgs a{};
      a.heads = op.i0 > 0 ? static_cast<u64>(op.i0) : 1;
      a.sq = static_cast<u64>(x.shape[1]);
      a.sk = static_cast<u64>(k.shape[1]);
      a.d = static_cast<u64>(x.shape[2]) / a.heads;
      a.dv = static_cast<u64>(v.shape[2]) / a.heads;
      a.scale = op.f0 != 0.0f ? op.f0 : 1.0f / std::sqrt(static_cast<float>(a.d > 0 ? a.d : 1));
      a.causal = (op.flags & CH_FLAG_CAUSAL) != 0;
      a.hasMask = has(op, 3);
      const u64 batch = static_cast<u64>(x.shape[0]);
      if (batch == 0 || a.sq == 0) return CH_OK;
      const u64 smem = ((a.d + a.dv + 2 * kGroup) * sizeof(float) + 15) / 16 * 16;
      if (smem > devices()[dev].device.maxThreadgroupMemoryLength)
        return unsupported(op, "a head size this large (threadgroup memory holds d + dv + 512 floats)");
      use(@"attention_f32");
      bind(enc, x, 0);
      bind(enc, k, 1);
      bind(enc, v, 2);
      bind(enc, a.hasMask ? op.inputs[3] : x, 3);  // a placeholder without a mask
      bind(enc, out, 4);
      args(enc, a, 5);
      [enc setThreadgroupMemoryLength:smem atIndex:0];
      [enc dispatchThreadgroups:MTLSizeMake(a.sq, a.heads, batch) threadsPerThreadgroup:MTLSizeMake(kGroup, 1, 1)];
      return CH_OK;
    }
    default:
      return fail(CH_ERR_UNSUPPORTED, std::string("op ") + kOpNames[op.kind] + " is unknown to the Metal backend");
  }
}

}  // namespace caphost::metal
