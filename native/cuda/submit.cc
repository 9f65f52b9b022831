// submit(): one command list, op by op, onto the stream. The host has validated shapes, dtypes
// and byte ranges; this file turns each op into its launcher's arguments and refuses only
// dtype combinations it has no kernel for.
#include <cmath>
#include <string>

#include "kernels.h"
#include "stream_ops.h"
#ifdef CAPHOST_HAVE_CUBLAS
#include "gemm_cublas.h"
#endif

namespace caphost::cuda {

namespace {

const char* const kOpNames[CH_OP_COUNT] = {"matmul",  "add",       "mul",     "scale",     "gelu",     "relu",
                                           "silu",    "softmax",   "layernorm", "rmsnorm", "embedding", "attention",
                                           "meanpool", "l2norm",   "cast",    "copy"};

i64 elements(const ch_tensor& t) {
  i64 n = 1;
  for (int i = 0; i < t.rank; ++i) n *= t.shape[i];
  return n;
}
i64 lastDim(const ch_tensor& t) { return t.rank > 0 ? t.shape[t.rank - 1] : 1; }
i64 dtypeSize(int dtype) { return dtype == CH_F32 || dtype == CH_I32 ? 4 : dtype == CH_U8 ? 1 : 2; }
bool isFloat(int dtype) { return dtype == CH_F32 || dtype == CH_F16 || dtype == CH_BF16; }

template <typename T = float>
T* ptr(const ch_tensor& t) {
  return reinterpret_cast<T*>(static_cast<char*>(t.buffer->ptr) + t.offset);
}
bool has(const ch_op& op, int i) { return op.n_inputs > i && op.inputs[i].buffer != nullptr; }

ch_status unsupported(const ch_op& op, const std::string& what) {
  return fail(CH_ERR_UNSUPPORTED, std::string(kOpNames[op.kind]) + ": " + what + " is not supported by the CUDA backend");
}

// Ops other than matmul, cast and copy read and write f32 only (index operands are i32).
bool allF32(const ch_op& op, int floatInputs) {
  for (int i = 0; i < floatInputs; ++i)
    if (has(op, i) && op.inputs[i].dtype != CH_F32) return false;
  return op.output.dtype == CH_F32;
}

GemmArgs gemmArgs(const ch_op& op) {
  const ch_tensor &a = op.inputs[0], &b = op.inputs[1], &c = op.output;
  GemmArgs g{};
  g.transA = (op.flags & CH_FLAG_TRANS_A) != 0;
  g.transB = (op.flags & CH_FLAG_TRANS_B) != 0;
  g.m = g.transA ? a.shape[a.rank - 1] : a.shape[a.rank - 2];
  g.k = g.transA ? a.shape[a.rank - 2] : a.shape[a.rank - 1];
  g.n = g.transB ? b.shape[b.rank - 2] : b.shape[b.rank - 1];
  g.batch = 1;
  for (int i = 0; i < c.rank - 2; ++i) g.batch *= c.shape[i];
  g.strideA = a.rank > 2 ? g.m * g.k : 0;
  g.strideB = b.rank > 2 ? g.k * g.n : 0;
  g.strideC = g.m * g.n;
  g.a = ptr<void>(a);
  g.b = ptr<void>(b);
  g.bias = has(op, 2) ? ptr(op.inputs[2]) : nullptr;
  g.c = ptr<void>(c);
  g.in = static_cast<DType>(a.dtype);
  g.out = static_cast<DType>(c.dtype);
  g.alpha = op.f0;
  g.activation = op.i0;
  return g;
}

cudaError_t attention(cudaStream_t s, const ch_op& op) {
  const ch_tensor &q = op.inputs[0], &k = op.inputs[1], &v = op.inputs[2];
  AttentionArgs a{};
  a.heads = op.i0 > 0 ? op.i0 : 1;
  a.batch = q.shape[0];
  a.sq = q.shape[1];
  a.sk = k.shape[1];
  a.d = q.shape[2] / a.heads;
  a.dv = v.shape[2] / a.heads;
  a.q = ptr(q);
  a.k = ptr(k);
  a.v = ptr(v);
  a.mask = has(op, 3) ? ptr<const std::int32_t>(op.inputs[3]) : nullptr;
  a.out = ptr(op.output);
  a.scale = op.f0 != 0.0f ? op.f0 : 1.0f / std::sqrt(static_cast<float>(a.d > 0 ? a.d : 1));
  a.causal = (op.flags & CH_FLAG_CAUSAL) != 0;
  return launchAttention(s, a);
}

// Runs one op; sets *status instead of returning a CUDA error when the op itself is refused.
cudaError_t runOp(ch_stream* st, const ch_op& op, ch_status* status) {
  cudaStream_t s = st->stream;
  const ch_tensor& x = op.inputs[0];
  const ch_tensor& out = op.output;
  *status = CH_OK;
  switch (op.kind) {
    case CH_OP_MATMUL: {
      const int in = x.dtype;
      if (!isFloat(in) || op.inputs[1].dtype != in || (out.dtype != CH_F32 && out.dtype != in) ||
          (has(op, 2) && op.inputs[2].dtype != CH_F32)) {
        *status = unsupported(op, "this dtype combination");
        return cudaSuccess;
      }
#ifdef CAPHOST_HAVE_CUBLAS
      if (gemmWithCublas()) {
        *status = cublas::gemm(st, gemmArgs(op));
        return cudaSuccess;
      }
#endif
      return launchGemm(s, gemmArgs(op), computeOf(st->device));
    }
    case CH_OP_CAST:
      if (!isFloat(x.dtype) || !isFloat(out.dtype)) {
        *status = unsupported(op, "a cast from or to a non-float dtype");
        return cudaSuccess;
      }
      if (x.dtype == out.dtype)
        return cudaMemcpyAsync(ptr<void>(out), ptr<void>(x), elements(x) * dtypeSize(x.dtype), cudaMemcpyDeviceToDevice,
                               s);
      return launchCast(s, ptr<void>(x), static_cast<DType>(x.dtype), ptr<void>(out), static_cast<DType>(out.dtype),
                        elements(x));
    case CH_OP_COPY:
      return cudaMemcpyAsync(ptr<void>(out), ptr<void>(x), elements(out) * dtypeSize(out.dtype),
                             cudaMemcpyDeviceToDevice, s);
    default:
      break;
  }

  const int floatInputs = op.kind == CH_OP_EMBEDDING || op.kind == CH_OP_MEANPOOL ? 1
                          : op.kind == CH_OP_ATTENTION                         ? 3
                                                                               : op.n_inputs;
  if (!allF32(op, floatInputs)) {
    *status = unsupported(op, "a dtype other than f32");
    return cudaSuccess;
  }
  const i64 n = elements(x), cols = lastDim(x), rows = cols ? n / cols : 0;
  switch (op.kind) {
    case CH_OP_ADD:
    case CH_OP_MUL: {
      const bool broadcast = elements(op.inputs[1]) != n;
      return launchBinary(s, op.kind == CH_OP_ADD ? Binary::Add : Binary::Mul, ptr(x), ptr(op.inputs[1]), ptr(out), n,
                          lastDim(op.inputs[1]), broadcast);
    }
    case CH_OP_SCALE: return launchUnary(s, Unary::Scale, ptr(x), ptr(out), n, op.f0);
    case CH_OP_GELU:
      return launchUnary(s, (op.flags & CH_FLAG_GELU_TANH) ? Unary::GeluTanh : Unary::GeluErf, ptr(x), ptr(out), n, 0);
    case CH_OP_RELU: return launchUnary(s, Unary::Relu, ptr(x), ptr(out), n, 0);
    case CH_OP_SILU: return launchUnary(s, Unary::Silu, ptr(x), ptr(out), n, 0);
    case CH_OP_SOFTMAX: return launchRows(s, RowOp::Softmax, ptr(x), nullptr, nullptr, ptr(out), rows, cols, 0);
    case CH_OP_LAYERNORM:
      return launchRows(s, RowOp::LayerNorm, ptr(x), ptr(op.inputs[1]), ptr(op.inputs[2]), ptr(out), rows, cols, op.f0);
    case CH_OP_RMSNORM:
      return launchRows(s, RowOp::RmsNorm, ptr(x), ptr(op.inputs[1]), nullptr, ptr(out), rows, cols, op.f0);
    case CH_OP_L2NORM: return launchRows(s, RowOp::L2Norm, ptr(x), nullptr, nullptr, ptr(out), rows, cols, op.f0);
    case CH_OP_EMBEDDING: {
      const ch_tensor& ids = op.inputs[1];
      if (ids.dtype != CH_I32) {
        *status = unsupported(op, "ids that are not i32");
        return cudaSuccess;
      }
      st->checkFlags = true;
      return launchEmbedding(s, ptr(x), x.shape[0], lastDim(x), ptr<const std::int32_t>(ids), elements(ids), ptr(out),
                             st->deviceFlags);
    }
    case CH_OP_ATTENTION: {
      const cudaError_t e = attention(s, op);
      if (e == cudaErrorInvalidValue) {
        cudaGetLastError();
        *status = unsupported(op, "a head size this large (shared memory holds d + dv + 288 floats, 48 KiB)");
        return cudaSuccess;
      }
      return e;
    }
    case CH_OP_MEANPOOL:
      return launchMeanPool(s, ptr(x), ptr<const std::int32_t>(op.inputs[1]), ptr(out), x.shape[0], x.shape[1],
                            x.shape[2]);
    default:
      *status = fail(CH_ERR_UNSUPPORTED, "op kind " + std::to_string(op.kind) + " is unknown to the CUDA backend");
      return cudaSuccess;
  }
}

}  // namespace

ch_status submit(ch_stream* st, const ch_op* ops, std::uint32_t count) {
  if (ch_status s = useDevice(st->device); s != CH_OK) return s;
  for (std::uint32_t i = 0; i < count; ++i) {
    const ch_op& op = ops[i];
    if (op.kind < 0 || op.kind >= CH_OP_COUNT)
      return fail(CH_ERR_UNSUPPORTED, "op " + std::to_string(i) + ": kind " + std::to_string(op.kind) + " is unknown");
    ch_status status = CH_OK;
    const cudaError_t e = runOp(st, op, &status);
    if (status != CH_OK) return status;
    if (e != cudaSuccess) {
      cudaGetLastError();
      return failCuda(e, std::string("op ") + std::to_string(i) + " (" + kOpNames[op.kind] + ")");
    }
  }
  return CH_OK;
}

}  // namespace caphost::cuda
