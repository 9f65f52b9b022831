#include "backend_exec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "attention.h"
#include "gemm.h"
#include "ops.h"
#include "thread_pool.h"

namespace caphost::cpu {
namespace {

using i64 = std::int64_t;
using ops::OpsTable;

i64 numel(const ch_tensor& t) {
  i64 n = 1;
  for (int i = 0; i < t.rank; ++i) n *= t.shape[i];
  return n;
}
i64 lastDim(const ch_tensor& t) { return t.shape[t.rank - 1]; }

float* f32(const ch_tensor& t) { return static_cast<float*>(tensorData(t)); }
const std::int32_t* i32(const ch_tensor& t) { return static_cast<const std::int32_t*>(tensorData(t)); }

// Elementwise and row work below this many elements runs on one thread: waking the pool
// costs more than it saves.
constexpr i64 kParallelElements = 1 << 16;

void forChunks(i64 n, int threads, const std::function<void(i64, i64)>& body) {
  if (n < kParallelElements || threads <= 1) return body(0, n);
  const i64 chunks = std::min<i64>(threads, (n + kParallelElements / 2 - 1) / (kParallelElements / 2));
  parallelFor(chunks, threads, [&](i64 c) { body(n * c / chunks, n * (c + 1) / chunks); });
}

void forRows(i64 rows, i64 cols, int threads, const std::function<void(i64, i64)>& body) {
  if (rows * cols < kParallelElements || threads <= 1 || rows == 1) return body(0, rows);
  const i64 chunks = std::min<i64>(threads, rows);
  parallelFor(chunks, threads, [&](i64 c) { body(rows * c / chunks, rows * (c + 1) / chunks); });
}

// Converts any float dtype to f32 (a copy only when the dtype is not f32 already).
const float* asF32(const OpsTable& k, const ch_tensor& t, std::vector<float>& scratch) {
  if (t.dtype == CH_F32) return f32(t);
  const i64 n = numel(t);
  scratch.resize(static_cast<std::size_t>(n));
  const auto* bits = static_cast<const std::uint16_t*>(tensorData(t));
  if (t.dtype == CH_F16) k.f16ToF32(bits, scratch.data(), n);
  else k.bf16ToF32(bits, scratch.data(), n);
  return scratch.data();
}

void storeFrom(const OpsTable& k, const float* src, const ch_tensor& out, i64 n) {
  if (out.dtype == CH_F32) {
    if (src != f32(out)) std::memcpy(f32(out), src, sizeof(float) * n);
    return;
  }
  auto* bits = static_cast<std::uint16_t*>(tensorData(out));
  if (out.dtype == CH_F16) k.f32ToF16(src, bits, n);
  else k.f32ToBf16(src, bits, n);
}

void activate(const OpsTable& k, int act, float* x, i64 n) {
  if (act == CH_ACT_RELU) k.relu(x, x, n);
  else if (act == CH_ACT_GELU_TANH) k.geluTanh(x, x, n);
  else if (act == CH_ACT_GELU_ERF) k.geluErf(x, x, n);
}

// Weights packed once per (address, shape, layout): a short-M GEMM otherwise spends most of its
// time re-packing the same weights on every call.
struct PackKey {
  const float* b;
  i64 n, k, ldb;
  bool transB;
  const KernelSet* ks;
  bool operator<(const PackKey& o) const {
    return std::tie(b, n, k, ldb, transB, ks) < std::tie(o.b, o.n, o.k, o.ldb, o.transB, o.ks);
  }
};
std::mutex packMutex;
std::map<PackKey, std::shared_ptr<float>>& packCache() {
  static auto* m = new std::map<PackKey, std::shared_ptr<float>>();
  return *m;
}

std::shared_ptr<float> packedWeights(const KernelSet* ks, const float* B, i64 n, i64 k, i64 ldb,
                                                        bool transB) {
  const PackKey key{B, n, k, ldb, transB, ks};
  {
    std::lock_guard<std::mutex> lock(packMutex);
    auto it = packCache().find(key);
    if (it != packCache().end()) return it->second;
  }
  auto packed = packWholeB(ks, static_cast<int>(n), static_cast<int>(k), B, static_cast<int>(ldb), transB);
  std::lock_guard<std::mutex> lock(packMutex);
  return packCache().emplace(key, std::move(packed)).first->second;
}

void matmul(const OpsTable& k, const ch_op& op, int threads) {
  const ch_tensor &a = op.inputs[0], &b = op.inputs[1], &out = op.output;
  const bool ta = (op.flags & CH_FLAG_TRANS_A) != 0, tb = (op.flags & CH_FLAG_TRANS_B) != 0;
  const i64 rowsPerBatch = out.shape[out.rank - 2], n = out.shape[out.rank - 1];
  const i64 kk = ta ? a.shape[a.rank - 2] : a.shape[a.rank - 1];
  const i64 batches = numel(out) / (rowsPerBatch * n);
  // Weights shared by every batch (a Linear layer over [B, S, H]): one GEMM over all B*S rows,
  // so the weights are packed once instead of once per sequence.
  const bool flatten = b.rank == 2 && batches > 1 && !ta;
  const i64 m = flatten ? batches * rowsPerBatch : rowsPerBatch;
  const i64 batch = flatten ? 1 : batches;
  const bool sharedB = b.rank == 2 && batch > 1;
  std::vector<float> sa, sb, sc;
  const float* A = asF32(k, a, sa);
  const float* B = asF32(k, b, sb);
  float* C = out.dtype == CH_F32 ? f32(out) : (sc.resize(static_cast<std::size_t>(batch * m * n)), sc.data());
  const float* bias = op.n_inputs > 2 ? f32(op.inputs[2]) : nullptr;
  const float alpha = op.f0;
  // The GEMM fuses bias + relu/gelu (CH_ACT_* and kAct* share their values); alpha needs a pass after it.
  static_assert(int{CH_ACT_RELU} == int{kActRelu} && int{CH_ACT_GELU_TANH} == int{kActGeluTanh} &&
                    int{CH_ACT_GELU_ERF} == int{kActGeluErf},
                "activation codes");
  const bool fused = alpha == 1.0f;
  const int act = fused ? op.i0 : CH_ACT_NONE;
  const float* fusedBias = fused ? bias : nullptr;
  const KernelSet* ks = defaultKernelSet();
  const int lda = static_cast<int>(ta ? m : kk), ldb = static_cast<int>(tb ? kk : n);
  auto one = [&](i64 i, int t) {
    sgemm(ks, static_cast<int>(m), static_cast<int>(n), static_cast<int>(kk), A + i * m * kk, lda, ta,
          B + (sharedB ? 0 : i * kk * n), ldb, tb, C + i * m * n, static_cast<int>(n), fusedBias, act, t);
  };
  if (batch == 1 && b.dtype == CH_F32 && isImmutable(b)) {
    // Weights from a mapped file: packed once, reused by every call.
    auto packed = packedWeights(ks, B, n, kk, ldb, tb);
    sgemmPacked(ks, static_cast<int>(m), static_cast<int>(n), static_cast<int>(kk), A, lda, ta, packed.get(), C,
                static_cast<int>(n), fusedBias, act, threads);
  } else if (batch >= threads && m * n * kk < (i64{1} << 21)) {
    // Many small products: one per thread; few large ones: each spread over the threads.
    parallelFor(batch, threads, [&](i64 i) { one(i, 1); });
  } else {
    for (i64 i = 0; i < batch; ++i) one(i, threads);
  }
  if (!fused) {
    const i64 rows = batch * m;
    forRows(rows, n, threads, [&](i64 r0, i64 r1) {
      for (i64 r = r0; r < r1; ++r) {
        float* row = C + r * n;
        if (alpha != 1.0f) k.scale(row, row, n, alpha);
        if (bias != nullptr) k.add(row, bias, row, n);
        activate(k, op.i0, row, n);
      }
    });
  }
  if (out.dtype != CH_F32) storeFrom(k, C, out, batch * m * n);
}

void binary(const OpsTable& k, const ch_op& op, int threads, bool isAdd) {
  const ch_tensor &a = op.inputs[0], &b = op.inputs[1];
  const i64 n = numel(a), cols = lastDim(a);
  const bool broadcast = numel(b) != n;
  const float *x = f32(a), *y = f32(b);
  float* o = f32(op.output);
  auto fn = isAdd ? k.add : k.mul;
  if (!broadcast) return forChunks(n, threads, [&](i64 s, i64 e) { fn(x + s, y + s, o + s, e - s); });
  forRows(n / cols, cols, threads, [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) fn(x + r * cols, y, o + r * cols, cols);
  });
}

void unary(const ch_op& op, int threads, void (*fn)(const float*, float*, i64)) {
  const float* x = f32(op.inputs[0]);
  float* o = f32(op.output);
  forChunks(numel(op.inputs[0]), threads, [&](i64 s, i64 e) { fn(x + s, o + s, e - s); });
}

void rowwise(const ch_op& op, int threads, const std::function<void(const float*, float*, i64)>& row) {
  const i64 cols = lastDim(op.inputs[0]), rows = numel(op.inputs[0]) / std::max<i64>(cols, 1);
  const float* x = f32(op.inputs[0]);
  float* o = f32(op.output);
  forRows(rows, cols, threads, [&](i64 r0, i64 r1) {
    for (i64 r = r0; r < r1; ++r) row(x + r * cols, o + r * cols, cols);
  });
}

void embedding(const ch_op& op) {
  const ch_tensor &table = op.inputs[0], &ids = op.inputs[1];
  const i64 vocab = table.shape[0], hidden = table.shape[1], count = numel(ids);
  const std::int32_t* id = i32(ids);
  for (i64 i = 0; i < count; ++i)
    if (id[i] < 0 || id[i] >= vocab)
      throw ExecError(CH_ERR_INVALID, "embedding: id " + std::to_string(id[i]) + " at position " + std::to_string(i) +
                                          " is outside the table's " + std::to_string(vocab) + " rows");
  ops::embedding(f32(table), id, count, f32(op.output), hidden);
}

void cast(const OpsTable& k, const ch_op& op) {
  const i64 n = numel(op.inputs[0]);
  std::vector<float> scratch;
  const float* src = asF32(k, op.inputs[0], scratch);
  storeFrom(k, src, op.output, n);
}

}  // namespace

void dropPackedWeights(const void* data, std::uint64_t bytes) {
  const char* lo = static_cast<const char*>(data);
  const char* hi = lo + bytes;
  std::lock_guard<std::mutex> lock(packMutex);
  for (auto it = packCache().begin(); it != packCache().end();) {
    const char* p = reinterpret_cast<const char*>(it->first.b);
    it = p >= lo && p < hi ? packCache().erase(it) : std::next(it);
  }
}

const char* execIsa() { return ops::defaultOps()->isa; }

void executeOp(const ch_op& op, int threads) {
  const OpsTable& k = *ops::defaultOps();
  switch (op.kind) {
    case CH_OP_MATMUL: return matmul(k, op, threads);
    case CH_OP_ADD: return binary(k, op, threads, true);
    case CH_OP_MUL: return binary(k, op, threads, false);
    case CH_OP_SCALE: {
      const float alpha = op.f0;
      const float* x = f32(op.inputs[0]);
      float* o = f32(op.output);
      return forChunks(numel(op.inputs[0]), threads, [&](i64 s, i64 e) { k.scale(x + s, o + s, e - s, alpha); });
    }
    case CH_OP_GELU: return unary(op, threads, (op.flags & CH_FLAG_GELU_TANH) != 0 ? k.geluTanh : k.geluErf);
    case CH_OP_RELU: return unary(op, threads, k.relu);
    case CH_OP_SILU: return unary(op, threads, k.silu);
    case CH_OP_SOFTMAX: return rowwise(op, threads, [&](const float* x, float* o, i64 n) { k.softmaxRow(x, o, n); });
    case CH_OP_LAYERNORM: {
      const float *g = f32(op.inputs[1]), *b = f32(op.inputs[2]);
      return rowwise(op, threads, [&](const float* x, float* o, i64 n) { k.layerNormRow(x, g, b, o, n, op.f0); });
    }
    case CH_OP_RMSNORM: {
      const float* g = f32(op.inputs[1]);
      return rowwise(op, threads, [&](const float* x, float* o, i64 n) { k.rmsNormRow(x, g, o, n, op.f0); });
    }
    case CH_OP_L2NORM:
      return rowwise(op, threads, [&](const float* x, float* o, i64 n) { k.l2NormRow(x, o, n, op.f0); });
    case CH_OP_EMBEDDING: return embedding(op);
    case CH_OP_ATTENTION: {
      const ch_tensor &q = op.inputs[0], &kt = op.inputs[1], &v = op.inputs[2];
      AttentionShape s{q.shape[0], q.shape[1], kt.shape[1], op.i0, q.shape[2] / op.i0, v.shape[2] / op.i0};
      const float scale = op.f0 != 0.0f ? op.f0 : 1.0f / std::sqrt(static_cast<float>(s.headDim));
      return attention(k, s, f32(q), f32(kt), f32(v), op.n_inputs > 3 ? i32(op.inputs[3]) : nullptr,
                       (op.flags & CH_FLAG_CAUSAL) != 0, scale, f32(op.output), threads);
    }
    case CH_OP_MEANPOOL: {
      const ch_tensor& x = op.inputs[0];
      return ops::meanPool(&k, f32(x), i32(op.inputs[1]), f32(op.output), x.shape[0], x.shape[1], x.shape[2]);
    }
    case CH_OP_CAST: return cast(k, op);
    case CH_OP_COPY: {
      const i64 bytes = numel(op.inputs[0]) * (op.inputs[0].dtype == CH_F16 || op.inputs[0].dtype == CH_BF16 ? 2
                                               : op.inputs[0].dtype == CH_U8                            ? 1
                                                                                                        : 4);
      std::memmove(tensorData(op.output), tensorData(op.inputs[0]), static_cast<std::size_t>(bytes));
      return;
    }
    default: throw ExecError(CH_ERR_UNSUPPORTED, "op kind " + std::to_string(op.kind) + " is not known to the CPU backend");
  }
}

}  // namespace caphost::cpu
