#include "command_list.h"

#include <cmath>
#include <sstream>

#include "../core/edge.h"

namespace caphost::device {
namespace {

using i64 = std::int64_t;

const char* kOpNames[CH_OP_COUNT] = {"matmul", "add",     "mul",       "scale",     "gelu",   "relu",
                                     "silu",   "softmax", "layerNorm", "rmsNorm",   "embedding", "attention",
                                     "meanPool", "l2Normalize", "cast", "copy"};

// Operand names per op, for errors a person can act on.
const char* operandName(int kind, int slot) {
  static const char* names[CH_OP_COUNT][CH_MAX_INPUTS] = {
      {"a", "b", "bias", "?"},         {"a", "b", "?", "?"},          {"a", "b", "?", "?"},
      {"x", "?", "?", "?"},            {"x", "?", "?", "?"},          {"x", "?", "?", "?"},
      {"x", "?", "?", "?"},            {"x", "?", "?", "?"},          {"x", "gamma", "beta", "?"},
      {"x", "gamma", "?", "?"},        {"table", "ids", "?", "?"},    {"q", "k", "v", "mask"},
      {"x", "mask", "?", "?"},         {"x", "?", "?", "?"},          {"x", "?", "?", "?"},
      {"x", "?", "?", "?"}};
  return slot == CH_MAX_INPUTS ? "out" : names[kind][slot];
}

std::string shapeText(const ch_tensor& t) {
  std::ostringstream s;
  s << '[';
  for (int i = 0; i < t.rank; ++i) s << (i ? ", " : "") << t.shape[i];
  s << ']';
  return s.str();
}

const char* dtypeName(int d) {
  switch (d) {
    case CH_F32: return "f32";
    case CH_F16: return "f16";
    case CH_BF16: return "bf16";
    case CH_I32: return "i32";
    case CH_U8: return "u8";
    default: return "?";
  }
}

i64 numel(const ch_tensor& t) {
  i64 n = 1;
  for (int i = 0; i < t.rank; ++i) n *= t.shape[i];
  return n;
}

struct Checker {
  const ch_op& op;
  std::size_t index;

  [[noreturn]] void fail(const std::string& message) const {
    throw CodedError("INVALID_ARGUMENT", std::string(opName(op.kind)) + " (op " + std::to_string(index) + "): " + message);
  }
  const ch_tensor& in(int i) const { return op.inputs[i]; }
  std::string nm(int slot) const { return operandName(op.kind, slot); }
  const ch_tensor& slot(int s) const { return s == CH_MAX_INPUTS ? op.output : op.inputs[s]; }

  void inputs(int min, int max) const {
    if (op.n_inputs < min || op.n_inputs > max)
      fail("takes " + (min == max ? std::to_string(min) : std::to_string(min) + " to " + std::to_string(max)) +
           " inputs, got " + std::to_string(op.n_inputs));
  }
  void dtype(int s, int d) const {
    if (slot(s).dtype != d) fail(nm(s) + " must be " + dtypeName(d) + ", got " + dtypeName(slot(s).dtype));
  }
  bool isFloat(int s) const { return slot(s).dtype == CH_F32 || slot(s).dtype == CH_F16 || slot(s).dtype == CH_BF16; }
  void floatDtype(int s) const {
    if (!isFloat(s)) fail(nm(s) + " must be f32, f16 or bf16, got " + dtypeName(slot(s).dtype));
  }
  void rank(int s, int lo, int hi) const {
    const int r = slot(s).rank;
    if (r < lo || r > hi)
      fail(nm(s) + " must have rank " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) +
           ", got shape " + shapeText(slot(s)));
  }
  void sameShape(int s, int t) const {
    const ch_tensor &a = slot(s), &b = slot(t);
    bool same = a.rank == b.rank;
    for (int i = 0; same && i < a.rank; ++i) same = a.shape[i] == b.shape[i];
    if (!same) fail(nm(t) + " has shape " + shapeText(b) + ", expected " + nm(s) + "'s shape " + shapeText(a));
  }
  void sameCount(int s, int t) const {
    if (numel(slot(s)) != numel(slot(t)))
      fail(nm(t) + " has " + std::to_string(numel(slot(t))) + " elements " + shapeText(slot(t)) + ", expected " +
           std::to_string(numel(slot(s))) + " like " + nm(s) + " " + shapeText(slot(s)));
  }
  void vectorOf(int s, i64 n) const {
    if (slot(s).rank != 1 || slot(s).shape[0] != n)
      fail(nm(s) + " must have shape [" + std::to_string(n) + "], got " + shapeText(slot(s)));
  }
  void dim(int s, int axis, i64 want, const std::string& why) const {
    const ch_tensor& t = slot(s);
    const int a = axis < 0 ? t.rank + axis : axis;
    if (t.shape[a] != want)
      fail(nm(s) + " " + shapeText(t) + ": dimension " + std::to_string(a) + " must be " + std::to_string(want) + " (" +
           why + ")");
  }
};

bool overlaps(const ch_tensor& a, const ch_tensor& b) {
  if (a.buffer != b.buffer) return false;
  const std::uint64_t aEnd = a.offset + numel(a) * dtypeSize(a.dtype), bEnd = b.offset + numel(b) * dtypeSize(b.dtype);
  return a.offset < bEnd && b.offset < aEnd;
}

void validate(const Checker& c) {
  const ch_op& op = c.op;
  const int O = CH_MAX_INPUTS;
  switch (op.kind) {
    case CH_OP_MATMUL: {
      c.inputs(2, 3);
      c.floatDtype(0);
      if (c.in(1).dtype != c.in(0).dtype) c.fail("b must have a's dtype " + std::string(dtypeName(c.in(0).dtype)));
      if (c.op.output.dtype != CH_F32 && c.op.output.dtype != c.in(0).dtype) c.fail("out must be f32 or the inputs' dtype");
      c.rank(0, 2, CH_MAX_RANK);
      c.rank(1, 2, CH_MAX_RANK);
      const ch_tensor &a = c.in(0), &b = c.in(1), &out = op.output;
      const bool ta = op.flags & CH_FLAG_TRANS_A, tb = op.flags & CH_FLAG_TRANS_B;
      const i64 m = ta ? a.shape[a.rank - 1] : a.shape[a.rank - 2], k = ta ? a.shape[a.rank - 2] : a.shape[a.rank - 1];
      const i64 kb = tb ? b.shape[b.rank - 1] : b.shape[b.rank - 2], n = tb ? b.shape[b.rank - 2] : b.shape[b.rank - 1];
      if (k != kb)
        c.fail("inner dimensions differ: a " + shapeText(a) + (ta ? " (transposed)" : "") + " has k = " + std::to_string(k) +
               ", b " + shapeText(b) + (tb ? " (transposed)" : "") + " has k = " + std::to_string(kb));
      if (b.rank != 2 && b.rank != a.rank) c.fail("b must be rank 2 or have a's rank " + std::to_string(a.rank));
      for (int i = 0; b.rank > 2 && i < a.rank - 2; ++i)
        if (a.shape[i] != b.shape[i]) c.fail("batch dimensions of a " + shapeText(a) + " and b " + shapeText(b) + " differ");
      if (out.rank != a.rank) c.fail("out must have a's rank " + std::to_string(a.rank) + ", got " + shapeText(out));
      for (int i = 0; i < a.rank - 2; ++i)
        if (out.shape[i] != a.shape[i]) c.fail("out " + shapeText(out) + " must keep a's batch dimensions " + shapeText(a));
      c.dim(O, -2, m, "rows of op(a)");
      c.dim(O, -1, n, "columns of op(b)");
      if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) c.fail("dimensions beyond 2^31-1 are not supported");
      if (op.n_inputs > 2) {
        c.dtype(2, CH_F32);
        c.vectorOf(2, n);
      }
      if (op.i0 < CH_ACT_NONE || op.i0 > CH_ACT_GELU_ERF) c.fail("unknown activation " + std::to_string(op.i0));
      for (int i = 0; i < op.n_inputs; ++i)
        if (overlaps(c.in(i), out)) c.fail("out overlaps input " + c.nm(i) + "; matmul cannot run in place");
      return;
    }
    case CH_OP_ADD:
    case CH_OP_MUL: {
      c.inputs(2, 2);
      c.dtype(0, CH_F32);
      c.dtype(1, CH_F32);
      c.dtype(O, CH_F32);
      c.rank(0, 1, CH_MAX_RANK);
      if (numel(c.in(1)) != numel(c.in(0))) {
        if (!(c.in(1).rank == 1 && c.in(1).shape[0] == c.in(0).shape[c.in(0).rank - 1]))
          c.fail("b " + shapeText(c.in(1)) + " must have a's shape " + shapeText(c.in(0)) + " or be its last axis [" +
                 std::to_string(c.in(0).shape[c.in(0).rank - 1]) + "]");
      } else {
        c.sameShape(0, 1);
      }
      c.sameShape(0, O);
      return;
    }
    case CH_OP_SCALE:
    case CH_OP_GELU:
    case CH_OP_RELU:
    case CH_OP_SILU:
    case CH_OP_SOFTMAX:
    case CH_OP_L2NORM:
      c.inputs(1, 1);
      c.dtype(0, CH_F32);
      c.dtype(O, CH_F32);
      c.rank(0, 1, CH_MAX_RANK);
      c.sameShape(0, O);
      if (op.kind == CH_OP_L2NORM && !(op.f0 > 0)) c.fail("eps must be > 0");
      return;
    case CH_OP_LAYERNORM:
    case CH_OP_RMSNORM: {
      const bool ln = op.kind == CH_OP_LAYERNORM;
      c.inputs(ln ? 3 : 2, ln ? 3 : 2);
      c.dtype(0, CH_F32);
      c.dtype(O, CH_F32);
      c.rank(0, 1, CH_MAX_RANK);
      const i64 n = c.in(0).shape[c.in(0).rank - 1];
      c.dtype(1, CH_F32);
      c.vectorOf(1, n);
      if (ln) {
        c.dtype(2, CH_F32);
        c.vectorOf(2, n);
      }
      c.sameShape(0, O);
      if (!(op.f0 > 0)) c.fail("eps must be > 0");
      return;
    }
    case CH_OP_EMBEDDING: {
      c.inputs(2, 2);
      c.dtype(0, CH_F32);
      c.dtype(1, CH_I32);
      c.dtype(O, CH_F32);
      c.rank(0, 2, 2);
      c.rank(1, 1, CH_MAX_RANK - 1);
      const ch_tensor &ids = c.in(1), &out = op.output;
      bool ok = out.rank == ids.rank + 1 && out.shape[out.rank - 1] == c.in(0).shape[1];
      for (int i = 0; ok && i < ids.rank; ++i) ok = out.shape[i] == ids.shape[i];
      if (!ok)
        c.fail("out " + shapeText(out) + " must be ids' shape " + shapeText(ids) + " plus the table's width " +
               std::to_string(c.in(0).shape[1]));
      return;
    }
    case CH_OP_ATTENTION: {
      c.inputs(3, 4);
      for (int s : {0, 1, 2, O}) {
        c.dtype(s, CH_F32);
        c.rank(s, 3, 3);
      }
      const i64 heads = op.i0;
      if (heads < 1) c.fail("heads must be >= 1");
      const ch_tensor &q = c.in(0), &k = c.in(1), &v = c.in(2);
      if (q.shape[2] % heads != 0) c.fail("q's width " + std::to_string(q.shape[2]) + " is not a multiple of " + std::to_string(heads) + " heads");
      if (v.shape[2] % heads != 0) c.fail("v's width " + std::to_string(v.shape[2]) + " is not a multiple of " + std::to_string(heads) + " heads");
      c.dim(1, 0, q.shape[0], "batch of q");
      c.dim(1, 2, q.shape[2], "width of q");
      c.dim(2, 0, q.shape[0], "batch of q");
      c.dim(2, 1, k.shape[1], "keys of k");
      c.dim(O, 0, q.shape[0], "batch of q");
      c.dim(O, 1, q.shape[1], "queries of q");
      c.dim(O, 2, v.shape[2], "width of v");
      if (op.n_inputs > 3) {
        c.dtype(3, CH_I32);
        c.rank(3, 2, 2);
        c.dim(3, 0, q.shape[0], "batch");
        c.dim(3, 1, k.shape[1], "keys of k");
      }
      if (!(op.f0 >= 0) || !std::isfinite(op.f0)) c.fail("scale must be a finite number >= 0 (0: 1/sqrt(head size))");
      for (int i = 0; i < op.n_inputs; ++i)
        if (overlaps(c.in(i), op.output)) c.fail("out overlaps input " + c.nm(i) + "; attention cannot run in place");
      return;
    }
    case CH_OP_MEANPOOL: {
      c.inputs(2, 2);
      c.dtype(0, CH_F32);
      c.dtype(1, CH_I32);
      c.dtype(O, CH_F32);
      c.rank(0, 3, 3);
      c.rank(1, 2, 2);
      c.rank(O, 2, 2);
      c.dim(1, 0, c.in(0).shape[0], "batch of x");
      c.dim(1, 1, c.in(0).shape[1], "sequence of x");
      c.dim(O, 0, c.in(0).shape[0], "batch of x");
      c.dim(O, 1, c.in(0).shape[2], "width of x");
      if (overlaps(c.in(0), op.output)) c.fail("out overlaps x; meanPool cannot run in place");
      return;
    }
    case CH_OP_CAST:
      c.inputs(1, 1);
      c.floatDtype(0);
      c.floatDtype(O);
      c.sameCount(0, O);
      if (c.in(0).dtype != op.output.dtype && overlaps(c.in(0), op.output)) c.fail("out overlaps x; a cast between dtypes cannot run in place");
      return;
    case CH_OP_COPY:
      c.inputs(1, 1);
      if (c.in(0).dtype != op.output.dtype) c.fail("out must have x's dtype; use cast to convert");
      c.sameCount(0, O);
      return;
    default: c.fail("unknown op kind " + std::to_string(op.kind));
  }
}

i64 asInt(double w, const char* what, std::size_t index) {
  if (!(w >= -9007199254740991.0 && w <= 9007199254740991.0) || w != std::floor(w))
    throw CodedError("INVALID_ARGUMENT", "command list op " + std::to_string(index) + ": " + what + " is not an integer");
  return static_cast<i64>(w);
}

}  // namespace

std::uint64_t dtypeSize(int dtype) {
  switch (dtype) {
    case CH_F16:
    case CH_BF16: return 2;
    case CH_U8: return 1;
    default: return 4;
  }
}

const char* opName(int kind) { return kind >= 0 && kind < CH_OP_COUNT ? kOpNames[kind] : "unknown op"; }

DecodedList decodeCommandList(const std::string& token, const std::vector<std::string>& handles, const double* words,
                              std::size_t wordCount) {
  if (wordCount % kOpWords != 0) throw CodedError("INVALID_ARGUMENT", "command list: malformed encoding");
  DecodedList list;
  std::vector<BufferRef> resolved(handles.size());
  std::vector<int> needed(handles.size(), 0);
  std::vector<std::string> firstUse(handles.size());
  const std::size_t count = wordCount / kOpWords;
  list.ops.resize(count);
  // First pass: what each handle is used for, so that each is resolved once with all rights.
  for (std::size_t i = 0; i < count; ++i) {
    const double* w = words + i * kOpWords;
    const int nIn = static_cast<int>(asInt(w[2], "input count", i));
    if (nIn < 0 || nIn > CH_MAX_INPUTS) throw CodedError("INVALID_ARGUMENT", "command list op " + std::to_string(i) + ": bad input count");
    for (int s = 0; s <= CH_MAX_INPUTS; ++s) {
      if (s >= nIn && s != CH_MAX_INPUTS) continue;
      const i64 h = asInt(w[kHeaderWords + s * kTensorWords], "handle index", i);
      if (h < 0 || h >= static_cast<i64>(handles.size()))
        throw CodedError("INVALID_ARGUMENT", "command list op " + std::to_string(i) + ": operand without a buffer");
      needed[h] |= s == CH_MAX_INPUTS ? kWrite : kRead;
      const int kind = static_cast<int>(w[0]);
      if (firstUse[h].empty() && kind >= 0 && kind < CH_OP_COUNT)
        firstUse[h] = std::string(opName(kind)) + " (op " + std::to_string(i) + ") " + operandName(kind, s);
    }
  }
  for (std::size_t h = 0; h < handles.size(); ++h) {
    if (needed[h] == 0) continue;
    resolved[h] = resolve(token, handles[h], needed[h], firstUse[h].empty() ? "command list" : firstUse[h]);
    if (list.backend == nullptr) {
      list.backend = resolved[h]->backend;
      list.device = resolved[h]->device;
    } else if (resolved[h]->backend != list.backend || resolved[h]->device != list.device) {
      throw CodedError("INVALID_ARGUMENT", "command list: its buffers live on different devices; copy them to one first");
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    const double* w = words + i * kOpWords;
    ch_op& op = list.ops[i];
    op = ch_op{};
    op.kind = static_cast<int32_t>(asInt(w[0], "kind", i));
    if (op.kind < 0 || op.kind >= CH_OP_COUNT) throw CodedError("INVALID_ARGUMENT", "command list op " + std::to_string(i) + ": unknown op kind");
    op.flags = static_cast<uint32_t>(asInt(w[1], "flags", i));
    op.n_inputs = static_cast<int32_t>(asInt(w[2], "input count", i));
    op.i0 = static_cast<int32_t>(asInt(w[3], "i0", i));
    op.f0 = static_cast<float>(w[4]);
    op.f1 = static_cast<float>(w[5]);
    for (int s = 0; s <= CH_MAX_INPUTS; ++s) {
      if (s >= op.n_inputs && s != CH_MAX_INPUTS) continue;
      const double* tw = w + kHeaderWords + s * kTensorWords;
      ch_tensor& t = s == CH_MAX_INPUTS ? op.output : op.inputs[s];
      const Buffer& buf = *resolved[static_cast<std::size_t>(tw[0])];
      t.buffer = buf.buffer;
      const i64 offset = asInt(tw[1], "offset", i);
      t.dtype = static_cast<int32_t>(asInt(tw[2], "dtype", i));
      t.rank = static_cast<int32_t>(asInt(tw[3], "rank", i));
      const Checker c{op, i};
      if (t.dtype < CH_F32 || t.dtype > CH_U8) c.fail(c.nm(s) + ": unknown dtype");
      if (t.rank < 1 || t.rank > CH_MAX_RANK) c.fail(c.nm(s) + ": rank must be 1 to " + std::to_string(CH_MAX_RANK));
      i64 n = 1;
      for (int d = 0; d < t.rank; ++d) {
        t.shape[d] = asInt(tw[4 + d], "shape", i);
        if (t.shape[d] < 1 || t.shape[d] > (i64{1} << 40)) c.fail(c.nm(s) + ": dimensions must be >= 1, got " + shapeText(t));
        n *= t.shape[d];
        if (n > (i64{1} << 40)) c.fail(c.nm(s) + ": too many elements");
      }
      if (offset < 0 || offset % static_cast<i64>(dtypeSize(t.dtype)) != 0)
        c.fail(c.nm(s) + ": byte offset " + std::to_string(offset) + " is not aligned to its dtype");
      t.offset = static_cast<std::uint64_t>(offset);
      const std::uint64_t end = t.offset + static_cast<std::uint64_t>(n) * dtypeSize(t.dtype);
      if (end > buf.bytes)
        throw CodedError("HANDLE_INVALID", std::string(opName(op.kind)) + " (op " + std::to_string(i) + "): " + c.nm(s) + " " +
                                               shapeText(t) + " at byte " + std::to_string(offset) + " reaches byte " +
                                               std::to_string(end) + ", beyond its buffer's " + std::to_string(buf.bytes));
    }
    validate(Checker{op, i});
  }
  for (auto& r : resolved)
    if (r) list.held.push_back(std::move(r));
  return list;
}

}  // namespace caphost::device
