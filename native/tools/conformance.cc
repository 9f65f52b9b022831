// caphost-backend-conformance LIBRARY [--quick]: runs every op of the backend interface on a
// backend library (cuda, metal) over seeded random data and shapes with edge sizes (1, primes,
// sizes that are not multiples of any tile or vector width), against float64 references
// computed here, and checks copies, the embedding id error and concurrent streams.
//
// Exit: 0 every case passed; 1 a case failed (each failure is printed); 2 the backend cannot
// run here (prints "SKIP: <reason>"); 3 the library is unusable.
//
// Tolerances, as |got - want| <= abs + rel * |want|:
//   matmul f32 out: abs 1e-4 * sqrt(K), rel 1e-4; f16/bf16 inputs (the reference uses the
//     rounded inputs; accumulation is f32): the same plus the output dtype's rounding
//     (f16 rel 1e-3, bf16 rel 8e-3)
//   add, mul, scale, relu, embedding, copy, casts: exact
//   silu, gelu, softmax, meanpool, l2norm: abs 1e-6, rel 2e-5
//   layernorm, rmsnorm: abs 5e-5, rel 5e-5; attention: abs 5e-5, rel 5e-5
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "backend_session.h"

using caphost::tools::Session;
using caphost::tools::tensor;
using i64 = std::int64_t;

namespace {

int failures = 0, passes = 0;
bool quick = false;

struct Rng {
  std::uint32_t s;
  explicit Rng(std::uint32_t seed) : s(seed) {}
  std::uint32_t next() {
    s += 0x6D2B79F5u;
    std::uint32_t t = s;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return t ^ (t >> 14);
  }
  float uniform(float span = 2.0f) { return (static_cast<float>(next() >> 8) / 16777216.0f - 0.5f) * span; }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint32_t>(n)); }
};

std::vector<float> randoms(Rng& r, i64 n, float span = 2.0f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = r.uniform(span);
  return v;
}

void report(bool ok, const std::string& label, const std::string& detail) {
  if (ok) {
    ++passes;
  } else {
    ++failures;
    std::printf("FAIL %s: %s\n", label.c_str(), detail.c_str());
  }
}

// Compares and reports the worst element.
void expectClose(const std::vector<float>& got, const std::vector<double>& want, double abs, double rel,
                 const std::string& label) {
  if (got.size() != want.size()) return report(false, label, "size mismatch");
  std::size_t worst = 0;
  double worstExcess = -1;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool bothNan = std::isnan(g) && std::isnan(w);
    const double err = bothNan ? 0 : (std::isnan(g) || std::isnan(w)) ? INFINITY : std::fabs(g - w);
    const double excess = err - (abs + rel * std::fabs(w));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "[%zu] got %.9g, want %.9g (abs %.2g, rel %.2g)", worst,
                want.empty() ? 0.0 : static_cast<double>(got[worst]), want.empty() ? 0.0 : want[worst], abs, rel);
  report(worstExcess <= 0 || want.empty(), label, buf);
}

std::vector<double> toDouble(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

double geluErf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double geluTanh(double x) { return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
double activate(double v, int act) {
  switch (act) {
    case CH_ACT_RELU: return v > 0 ? v : 0;
    case CH_ACT_GELU_TANH: return geluTanh(v);
    case CH_ACT_GELU_ERF: return geluErf(v);
    default: return v;
  }
}

// Values in a dtype: the bytes to upload and the floats they stand for.
struct Typed {
  std::vector<std::uint8_t> bytes;
  std::vector<float> values;
};
Typed typed(const std::vector<float>& v, ch_dtype dtype) {
  Typed t;
  t.values.resize(v.size());
  if (dtype == CH_F32) {
    t.bytes.resize(v.size() * 4);
    std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
    t.values = v;
    return t;
  }
  std::vector<std::uint16_t> h(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    h[i] = dtype == CH_F16 ? caphost::tools::toF16(v[i]) : caphost::tools::toBf16(v[i]);
    t.values[i] = dtype == CH_F16 ? caphost::tools::fromF16(h[i]) : caphost::tools::fromBf16(h[i]);
  }
  t.bytes.resize(h.size() * 2);
  std::memcpy(t.bytes.data(), h.data(), t.bytes.size());
  return t;
}
std::vector<float> untyped(const std::vector<std::uint8_t>& bytes, ch_dtype dtype) {
  const std::size_t n = dtype == CH_F32 ? bytes.size() / 4 : bytes.size() / 2;
  std::vector<float> out(n);
  if (dtype == CH_F32) {
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    out[i] = dtype == CH_F16 ? caphost::tools::fromF16(h) : caphost::tools::fromBf16(h);
  }
  return out;
}
const char* dtypeName(int d) { return d == CH_F32 ? "f32" : d == CH_F16 ? "f16" : d == CH_BF16 ? "bf16" : "?"; }
i64 dtypeSize(int d) { return d == CH_F32 || d == CH_I32 ? 4 : 2; }

std::string shapeText(std::initializer_list<i64> dims) {
  std::string s;
  for (i64 d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// ---- matmul ----

void matmulCase(Session& s, Rng& r, ch_dtype in, ch_dtype outType, i64 batch, bool sharedB, i64 M, i64 N, i64 K,
                bool transA, bool transB, bool bias, int act, float alpha) {
  const i64 bb = sharedB ? 1 : batch;
  const Typed a = typed(randoms(r, batch * M * K), in), b = typed(randoms(r, bb * K * N), in);
  const std::vector<float> bv = randoms(r, N);
  std::vector<i64> aShape = transA ? std::vector<i64>{K, M} : std::vector<i64>{M, K};
  std::vector<i64> bShape = transB ? std::vector<i64>{N, K} : std::vector<i64>{K, N};
  std::vector<i64> cShape{M, N};
  if (batch > 1 || !sharedB) {
    aShape.insert(aShape.begin(), batch);
    cShape.insert(cShape.begin(), batch);
    if (!sharedB) bShape.insert(bShape.begin(), batch);
  }
  ch_buffer* A = s.upload(a.bytes.data(), a.bytes.size());
  ch_buffer* B = s.upload(b.bytes.data(), b.bytes.size());
  ch_buffer* bias_ = bias ? s.upload(bv) : nullptr;
  const i64 outBytes = batch * M * N * dtypeSize(outType);
  ch_buffer* C = s.alloc(static_cast<std::uint64_t>(outBytes > 0 ? outBytes : 1));
  std::vector<ch_tensor> ins{tensor(A, in, aShape), tensor(B, in, bShape)};
  if (bias) ins.push_back(tensor(bias_, CH_F32, {N}));
  ch_op o = caphost::tools::op(CH_OP_MATMUL, ins, tensor(C, outType, cShape));
  o.flags = (transA ? CH_FLAG_TRANS_A : 0u) | (transB ? CH_FLAG_TRANS_B : 0u);
  o.f0 = alpha;
  o.i0 = act;
  const std::string label = std::string("matmul ") + dtypeName(in) + "->" + dtypeName(outType) + " " +
                            shapeText({batch, M, N, K}) + (transA ? " tA" : "") + (transB ? " tB" : "") +
                            (sharedB ? " sharedB" : "") + (bias ? " bias" : "") + " act" + std::to_string(act);
  if (ch_status st = s.run(&o, 1); st != CH_OK) {
    report(false, label, std::string("status ") + std::to_string(st) + ": " + s.b->last_error());
  } else {
    std::vector<std::uint8_t> raw = s.download<std::uint8_t>(C, static_cast<std::size_t>(outBytes));
    std::vector<double> want(static_cast<std::size_t>(batch * M * N));
    for (i64 z = 0; z < batch; ++z)
      for (i64 m = 0; m < M; ++m)
        for (i64 n = 0; n < N; ++n) {
          double acc = 0;
          for (i64 k = 0; k < K; ++k) {
            const double av = a.values[z * M * K + (transA ? k * M + m : m * K + k)];
            const double bvv = b.values[(sharedB ? 0 : z * K * N) + (transB ? n * K + k : k * N + n)];
            acc += av * bvv;
          }
          double v = alpha * acc + (bias ? bv[n] : 0.0);
          want[z * M * N + m * N + n] = activate(v, act);
        }
    const double outRel = outType == CH_F16 ? 1e-3 : outType == CH_BF16 ? 8e-3 : 0;
    expectClose(untyped(raw, outType), want, 1e-4 * std::sqrt(static_cast<double>(K) + 1), 1e-4 + outRel, label);
  }
  s.free(A);
  s.free(B);
  if (bias_) s.free(bias_);
  s.free(C);
}

void matmuls(Session& s) {
  Rng r(1);
  struct Dims { i64 m, n, k; };
  std::vector<Dims> dims{{1, 1, 1}, {7, 13, 5}, {64, 64, 64}, {65, 31, 129}, {17, 200, 33}};
  if (!quick) dims.push_back({130, 257, 300});
  for (ch_dtype in : {CH_F32, CH_F16, CH_BF16}) {
    for (const Dims& d : dims)
      for (int t = 0; t < 4; ++t)
        matmulCase(s, r, in, CH_F32, 1, true, d.m, d.n, d.k, t & 1, t & 2, false, CH_ACT_NONE, 1.0f);
    // Fused epilogue, output in the input dtype, batches with shared and batched b.
    for (int act = CH_ACT_NONE; act <= CH_ACT_GELU_ERF; ++act)
      matmulCase(s, r, in, in, 3, false, 33, 48, 40, false, act % 2 == 1, true, act, 0.5f);
    matmulCase(s, r, in, CH_F32, 2, true, 50, 19, 72, true, false, true, CH_ACT_RELU, 1.0f);
    matmulCase(s, r, in, CH_F32, 1, true, 256, 256, 256, false, false, false, CH_ACT_NONE, 1.0f);
  }
}

// ---- elementwise and rows ----

std::vector<i64> widths() { return quick ? std::vector<i64>{1, 7, 33, 385} : std::vector<i64>{1, 7, 33, 385, 4099}; }

void elementwise(Session& s) {
  Rng r(2);
  const i64 rows = 3;
  for (i64 cols : widths()) {
    const i64 n = rows * cols;
    const std::vector<float> x = randoms(r, n, 8), y = randoms(r, n, 8), row = randoms(r, cols, 8);
    ch_buffer *X = s.upload(x), *Y = s.upload(y), *R = s.upload(row), *O = s.alloc(n * 4);
    const ch_tensor tx = tensor(X, CH_F32, {rows, cols}), ty = tensor(Y, CH_F32, {rows, cols}),
                    tr = tensor(R, CH_F32, {cols}), to = tensor(O, CH_F32, {rows, cols});
    const std::string w = " " + shapeText({rows, cols});
    auto runUnary = [&](ch_op o, const std::string& label, const std::function<double(double, i64)>& f, double abs,
                        double rel) {
      if (ch_status st = s.run(&o, 1); st != CH_OK) return report(false, label, s.b->last_error());
      const std::vector<float> got = s.download<float>(O, static_cast<std::size_t>(n));
      std::vector<double> want(static_cast<std::size_t>(n));
      for (i64 i = 0; i < n; ++i) want[i] = static_cast<float>(f(x[i], i));
      expectClose(got, want, abs, rel, label);
    };
    runUnary(caphost::tools::op(CH_OP_ADD, {tx, ty}, to), "add" + w, [&](double v, i64 i) { return float(v + y[i]); }, 0, 0);
    runUnary(caphost::tools::op(CH_OP_MUL, {tx, ty}, to), "mul" + w, [&](double v, i64 i) { return float(v * y[i]); }, 0, 0);
    runUnary(caphost::tools::op(CH_OP_ADD, {tx, tr}, to), "add broadcast" + w,
             [&](double v, i64 i) { return float(v + row[i % cols]); }, 0, 0);
    runUnary(caphost::tools::op(CH_OP_MUL, {tx, tr}, to), "mul broadcast" + w,
             [&](double v, i64 i) { return float(v * row[i % cols]); }, 0, 0);
    ch_op sc = caphost::tools::op(CH_OP_SCALE, {tx}, to);
    sc.f0 = -0.37f;
    runUnary(sc, "scale" + w, [&](double v, i64) { return float(v * -0.37f); }, 0, 0);
    runUnary(caphost::tools::op(CH_OP_RELU, {tx}, to), "relu" + w, [](double v, i64) { return v > 0 ? v : 0; }, 0, 0);
    runUnary(caphost::tools::op(CH_OP_SILU, {tx}, to), "silu" + w, [](double v, i64) { return v / (1 + std::exp(-v)); },
             1e-6, 2e-5);
    runUnary(caphost::tools::op(CH_OP_GELU, {tx}, to), "gelu erf" + w, [](double v, i64) { return geluErf(v); }, 1e-6,
             2e-5);
    ch_op gt = caphost::tools::op(CH_OP_GELU, {tx}, to);
    gt.flags = CH_FLAG_GELU_TANH;
    runUnary(gt, "gelu tanh" + w, [](double v, i64) { return geluTanh(v); }, 1e-6, 2e-5);
    s.free(X);
    s.free(Y);
    s.free(R);
    s.free(O);
  }
}

void rowOps(Session& s) {
  Rng r(3);
  const i64 rows = 5;
  for (i64 cols : widths()) {
    const i64 n = rows * cols;
    const std::vector<float> x = randoms(r, n, 8), g = randoms(r, cols, 2), be = randoms(r, cols, 2);
    ch_buffer *X = s.upload(x), *G = s.upload(g), *Be = s.upload(be), *O = s.alloc(n * 4);
    const ch_tensor tx = tensor(X, CH_F32, {rows, cols}), tg = tensor(G, CH_F32, {cols}), tb = tensor(Be, CH_F32, {cols}),
                    to = tensor(O, CH_F32, {rows, cols});
    const std::string w = " " + shapeText({rows, cols});
    auto check = [&](ch_op o, const std::string& label, const std::function<void(const float*, double*)>& rowRef,
                     double abs, double rel) {
      if (ch_status st = s.run(&o, 1); st != CH_OK) return report(false, label, s.b->last_error());
      const std::vector<float> got = s.download<float>(O, static_cast<std::size_t>(n));
      std::vector<double> want(static_cast<std::size_t>(n));
      for (i64 i = 0; i < rows; ++i) rowRef(x.data() + i * cols, want.data() + i * cols);
      expectClose(got, want, abs, rel, label);
    };
    check(caphost::tools::op(CH_OP_SOFTMAX, {tx}, to), "softmax" + w,
          [&](const float* v, double* o) {
            double mx = -INFINITY, sum = 0;
            for (i64 i = 0; i < cols; ++i) mx = std::max(mx, double(v[i]));
            for (i64 i = 0; i < cols; ++i) sum += std::exp(v[i] - mx);
            for (i64 i = 0; i < cols; ++i) o[i] = std::exp(v[i] - mx) / sum;
          },
          1e-6, 2e-5);
    ch_op ln = caphost::tools::op(CH_OP_LAYERNORM, {tx, tg, tb}, to);
    ln.f0 = 1e-5f;
    check(ln, "layernorm" + w,
          [&](const float* v, double* o) {
            double mean = 0, var = 0;
            for (i64 i = 0; i < cols; ++i) mean += v[i];
            mean /= cols;
            for (i64 i = 0; i < cols; ++i) var += (v[i] - mean) * (v[i] - mean);
            const double rstd = 1 / std::sqrt(var / cols + 1e-5);
            for (i64 i = 0; i < cols; ++i) o[i] = (v[i] - mean) * rstd * g[i] + be[i];
          },
          5e-5, 5e-5);
    ch_op rms = caphost::tools::op(CH_OP_RMSNORM, {tx, tg}, to);
    rms.f0 = 1e-6f;
    check(rms, "rmsnorm" + w,
          [&](const float* v, double* o) {
            double ss = 0;
            for (i64 i = 0; i < cols; ++i) ss += double(v[i]) * v[i];
            const double rr = 1 / std::sqrt(ss / cols + 1e-6);
            for (i64 i = 0; i < cols; ++i) o[i] = v[i] * rr * g[i];
          },
          5e-5, 5e-5);
    ch_op l2 = caphost::tools::op(CH_OP_L2NORM, {tx}, to);
    l2.f0 = 1e-12f;
    check(l2, "l2norm" + w,
          [&](const float* v, double* o) {
            double ss = 0;
            for (i64 i = 0; i < cols; ++i) ss += double(v[i]) * v[i];
            const double inv = 1 / std::max(std::sqrt(ss), 1e-12);
            for (i64 i = 0; i < cols; ++i) o[i] = v[i] * inv;
          },
          1e-6, 2e-5);
    s.free(X);
    s.free(G);
    s.free(Be);
    s.free(O);
  }
}

// ---- embedding, meanpool, attention ----

void embedding(Session& s) {
  Rng r(4);
  const i64 vocab = 50;
  for (i64 hidden : {1, 33, 300}) {
    const std::vector<float> table = randoms(r, vocab * hidden);
    std::vector<std::int32_t> ids(2 * 7);
    for (auto& id : ids) id = r.below(static_cast<int>(vocab));
    ch_buffer *T = s.upload(table), *I = s.upload(ids), *O = s.alloc(ids.size() * hidden * 4);
    const ch_tensor tt = tensor(T, CH_F32, {vocab, hidden}), ti = tensor(I, CH_I32, {2, 7}),
                    to = tensor(O, CH_F32, {2, 7, hidden});
    ch_op o = caphost::tools::op(CH_OP_EMBEDDING, {tt, ti}, to);
    const std::string label = "embedding " + shapeText({vocab, hidden});
    if (ch_status st = s.run(&o, 1); st != CH_OK) {
      report(false, label, s.b->last_error());
    } else {
      const std::vector<float> got = s.download<float>(O, ids.size() * hidden);
      std::vector<double> want;
      for (std::int32_t id : ids)
        for (i64 h = 0; h < hidden; ++h) want.push_back(table[id * hidden + h]);
      expectClose(got, want, 0, 0, label);
    }
    // An id out of range fails the submission (at synchronize on a GPU), names the op, and
    // leaves the stream usable.
    std::vector<std::int32_t> bad = ids;
    bad[5] = static_cast<std::int32_t>(vocab) + 3;
    bad[9] = -1;
    ch_buffer* Ib = s.upload(bad);
    ch_op ob = caphost::tools::op(CH_OP_EMBEDDING, {tt, tensor(Ib, CH_I32, {2, 7})}, to);
    const ch_status st = s.run(&ob, 1);
    const std::string msg = s.b->last_error();
    report(st == CH_ERR_INVALID && msg.find("embedding") != std::string::npos, label + " id out of range",
           "status " + std::to_string(st) + ", message \"" + msg + "\"");
    report(s.run(&o, 1) == CH_OK, label + " runs again after the id error", s.b->last_error());
    s.free(T);
    s.free(I);
    s.free(Ib);
    s.free(O);
  }
}

void meanPool(Session& s) {
  Rng r(5);
  const i64 batch = 3;
  for (i64 seq : {1, 7, 65})
    for (i64 hidden : {1, 33, 130}) {
      const std::vector<float> x = randoms(r, batch * seq * hidden);
      std::vector<std::int32_t> mask(static_cast<std::size_t>(batch * seq));
      for (auto& m : mask) m = r.below(3) != 0;
      for (i64 t = 0; t < seq; ++t) mask[1 * seq + t] = 0;  // batch 1 fully masked: zeros
      mask[0] = 1;
      ch_buffer *X = s.upload(x), *M = s.upload(mask), *O = s.alloc(batch * hidden * 4);
      ch_op o = caphost::tools::op(CH_OP_MEANPOOL,
                                   {tensor(X, CH_F32, {batch, seq, hidden}), tensor(M, CH_I32, {batch, seq})},
                                   tensor(O, CH_F32, {batch, hidden}));
      const std::string label = "meanpool " + shapeText({batch, seq, hidden});
      if (ch_status st = s.run(&o, 1); st != CH_OK) {
        report(false, label, s.b->last_error());
      } else {
        const std::vector<float> got = s.download<float>(O, static_cast<std::size_t>(batch * hidden));
        std::vector<double> want(static_cast<std::size_t>(batch * hidden));
        for (i64 b = 0; b < batch; ++b)
          for (i64 h = 0; h < hidden; ++h) {
            double sum = 0;
            i64 c = 0;
            for (i64 t = 0; t < seq; ++t)
              if (mask[b * seq + t]) sum += x[(b * seq + t) * hidden + h], ++c;
            want[b * hidden + h] = c ? sum / c : 0;
          }
        expectClose(got, want, 1e-6, 2e-5, label);
      }
      s.free(X);
      s.free(M);
      s.free(O);
    }
}

void attentionCase(Session& s, Rng& r, i64 B, i64 Sq, i64 Sk, i64 H, i64 D, i64 Dv, bool masked, bool causal,
                   float scale) {
  const std::vector<float> q = randoms(r, B * Sq * H * D, 4), k = randoms(r, B * Sk * H * D, 4),
                           v = randoms(r, B * Sk * H * Dv, 4);
  std::vector<std::int32_t> mask(static_cast<std::size_t>(B * Sk), 1);
  if (masked) {
    for (auto& m : mask) m = r.below(4) != 0;
    if (B > 1)
      for (i64 j = 0; j < Sk; ++j) mask[1 * Sk + j] = 0;  // a batch with every key masked: zeros
  }
  ch_buffer *Q = s.upload(q), *K = s.upload(k), *V = s.upload(v), *M = s.upload(mask),
            *O = s.alloc(B * Sq * H * Dv * 4);
  std::vector<ch_tensor> ins{tensor(Q, CH_F32, {B, Sq, H * D}), tensor(K, CH_F32, {B, Sk, H * D}),
                             tensor(V, CH_F32, {B, Sk, H * Dv})};
  if (masked) ins.push_back(tensor(M, CH_I32, {B, Sk}));
  ch_op o = caphost::tools::op(CH_OP_ATTENTION, ins, tensor(O, CH_F32, {B, Sq, H * Dv}));
  o.i0 = static_cast<std::int32_t>(H);
  o.f0 = scale;
  o.flags = causal ? CH_FLAG_CAUSAL : 0u;
  const std::string label = "attention B" + std::to_string(B) + " Sq" + std::to_string(Sq) + " Sk" +
                            std::to_string(Sk) + " H" + std::to_string(H) + " D" + std::to_string(D) + " Dv" +
                            std::to_string(Dv) + (masked ? " mask" : "") + (causal ? " causal" : "");
  if (ch_status st = s.run(&o, 1); st != CH_OK) {
    report(false, label, s.b->last_error());
  } else {
    const std::vector<float> got = s.download<float>(O, static_cast<std::size_t>(B * Sq * H * Dv));
    std::vector<double> want(got.size(), 0.0);
    const double sc = scale != 0 ? scale : 1 / std::sqrt(static_cast<double>(D));
    for (i64 b = 0; b < B; ++b)
      for (i64 h = 0; h < H; ++h)
        for (i64 i = 0; i < Sq; ++i) {
          std::vector<double> w(static_cast<std::size_t>(Sk), -INFINITY);
          double mx = -INFINITY;
          for (i64 j = 0; j < Sk; ++j) {
            if (!mask[b * Sk + j] || (causal && j > i + (Sk - Sq))) continue;
            double dot = 0;
            for (i64 t = 0; t < D; ++t) dot += double(q[(b * Sq + i) * H * D + h * D + t]) * k[(b * Sk + j) * H * D + h * D + t];
            w[j] = dot * sc;
            mx = std::max(mx, w[j]);
          }
          if (mx == -INFINITY) continue;
          double sum = 0;
          for (i64 j = 0; j < Sk; ++j) sum += w[j] == -INFINITY ? 0 : std::exp(w[j] - mx);
          for (i64 t = 0; t < Dv; ++t) {
            double acc = 0;
            for (i64 j = 0; j < Sk; ++j)
              if (w[j] != -INFINITY) acc += std::exp(w[j] - mx) * v[(b * Sk + j) * H * Dv + h * Dv + t];
            want[(b * Sq + i) * H * Dv + h * Dv + t] = acc / sum;
          }
        }
    expectClose(got, want, 5e-5, 5e-5, label);
  }
  for (ch_buffer* buf : {Q, K, V, M, O}) s.free(buf);
}

void attention(Session& s) {
  Rng r(6);
  attentionCase(s, r, 1, 1, 1, 1, 8, 8, false, false, 0);
  attentionCase(s, r, 2, 5, 5, 3, 8, 8, true, false, 0);
  attentionCase(s, r, 2, 5, 5, 3, 8, 8, false, true, 0);
  attentionCase(s, r, 2, 17, 17, 2, 64, 40, true, true, 0.2f);
  attentionCase(s, r, 1, 1, 300, 2, 64, 64, true, true, 0);  // one decoding query sees every key
  attentionCase(s, r, 2, 5, 300, 1, 33, 17, true, false, 0); // keys span chunks
  if (!quick) attentionCase(s, r, 1, 7, 1031, 4, 64, 64, true, true, 0);
}

// ---- casts, copies, streams ----

void casts(Session& s) {
  Rng r(7);
  std::vector<float> v = randoms(r, 1000, 200);
  const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-8f, -3e-6f, 6.1e-5f, 65504.0f, 65520.0f, 1e6f,
                            3.0e38f, 1.17549435e-38f, 1.0f / 3.0f};
  v.insert(v.end(), std::begin(specials), std::end(specials));
  const i64 n = static_cast<i64>(v.size());
  for (ch_dtype from : {CH_F32, CH_F16, CH_BF16})
    for (ch_dtype to : {CH_F32, CH_F16, CH_BF16}) {
      const Typed src = typed(v, from);
      ch_buffer *X = s.upload(src.bytes.data(), src.bytes.size()), *O = s.alloc(n * dtypeSize(to));
      ch_op o = caphost::tools::op(CH_OP_CAST, {tensor(X, from, {n})}, tensor(O, to, {n}));
      const std::string label = std::string("cast ") + dtypeName(from) + "->" + dtypeName(to);
      if (ch_status st = s.run(&o, 1); st != CH_OK) {
        report(false, label, s.b->last_error());
      } else {
        const std::vector<float> got = untyped(s.download<std::uint8_t>(O, static_cast<std::size_t>(n * dtypeSize(to))), to);
        const Typed want = typed(src.values, to);
        expectClose(got, toDouble(want.values), 0, 0, label);
      }
      s.free(X);
      s.free(O);
    }
}

void copies(Session& s) {
  Rng r(8);
  // Offsets, odd sizes, many small copies before one synchronize, and copies larger than the
  // staging a backend may use (they take another path).
  std::vector<i64> sizes{1, 3, 4097, 1 << 20};
  if (!quick) sizes.push_back(80ll << 20);
  for (i64 bytes : sizes) {
    std::vector<std::uint8_t> src(static_cast<std::size_t>(bytes)), back(static_cast<std::size_t>(bytes)),
        copied(static_cast<std::size_t>(bytes));
    for (auto& c : src) c = static_cast<std::uint8_t>(r.next());
    ch_buffer *A = s.alloc(bytes + 64), *B = s.alloc(bytes + 64);
    s.check(s.b->copy_to_device(s.stream, A, 17, src.data(), bytes), "copy_to_device");
    ch_op o = caphost::tools::op(CH_OP_COPY, {tensor(A, CH_U8, {bytes}, 17)}, tensor(B, CH_U8, {bytes}, 5));
    s.check(s.b->submit(s.stream, &o, 1), "submit copy");
    s.check(s.b->copy_to_host(s.stream, back.data(), A, 17, bytes), "copy_to_host");
    s.check(s.b->copy_to_host(s.stream, copied.data(), B, 5, bytes), "copy_to_host");
    s.check(s.b->synchronize(s.stream), "synchronize");
    report(back == src, "copy round trip " + std::to_string(bytes) + " B", "bytes differ after the round trip");
    report(copied == src, "copy op " + std::to_string(bytes) + " B", "bytes differ after the copy op");
    s.free(A);
    s.free(B);
  }
  std::vector<std::vector<float>> parts(64), back(64);
  ch_buffer* P = s.alloc(64 * 100 * 4);
  for (int i = 0; i < 64; ++i) {
    parts[i] = randoms(r, 100);
    back[i].resize(100);
    s.check(s.b->copy_to_device(s.stream, P, i * 400, parts[i].data(), 400), "copy_to_device");
  }
  for (int i = 0; i < 64; ++i) s.check(s.b->copy_to_host(s.stream, back[i].data(), P, (63 - i) * 400, 400), "copy_to_host");
  s.check(s.b->synchronize(s.stream), "synchronize");
  bool ok = true;
  for (int i = 0; i < 64; ++i) ok = ok && back[i] == parts[63 - i];
  report(ok, "64 small copies each way before one synchronize", "a piece came back wrong");
  s.free(P);
}

void streams(Session& s) {
  // Two host threads, each with its own stream, running GEMMs at once.
  const i64 n = 192;
  Rng r(9);
  const std::vector<float> a = randoms(r, n * n), b = randoms(r, n * n);
  std::vector<double> want(static_cast<std::size_t>(n * n));
  for (i64 i = 0; i < n; ++i)
    for (i64 j = 0; j < n; ++j) {
      double acc = 0;
      for (i64 k = 0; k < n; ++k) acc += double(a[i * n + k]) * b[k * n + j];
      want[i * n + j] = acc;
    }
  ch_buffer *A = s.upload(a), *B = s.upload(b);
  s.check(s.b->synchronize(s.stream), "synchronize");
  std::vector<std::vector<float>> got(2, std::vector<float>(static_cast<std::size_t>(n * n)));
  std::vector<std::string> errors(2);
  ch_stream* st[2] = {s.newStream(), s.newStream()};
  ch_buffer* C[2] = {s.alloc(n * n * 4), s.alloc(n * n * 4)};
  auto work = [&](int t) {
    ch_op o = caphost::tools::op(CH_OP_MATMUL, {tensor(A, CH_F32, {n, n}), tensor(B, CH_F32, {n, n})},
                                 tensor(C[t], CH_F32, {n, n}));
    o.f0 = 1.0f;
    for (int rep = 0; rep < 20; ++rep)
      if (s.b->submit(st[t], &o, 1) != CH_OK) errors[t] = s.b->last_error();
    if (s.b->copy_to_host(st[t], got[t].data(), C[t], 0, n * n * 4) != CH_OK || s.b->synchronize(st[t]) != CH_OK)
      errors[t] = s.b->last_error();
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  for (int t = 0; t < 2; ++t) {
    if (!errors[t].empty()) report(false, "stream " + std::to_string(t), errors[t]);
    else expectClose(got[t], want, 1e-4 * std::sqrt(double(n)), 1e-4, "concurrent streams, stream " + std::to_string(t));
  }
  for (ch_buffer* buf : {A, B, C[0], C[1]}) s.free(buf);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: caphost-backend-conformance LIBRARY [--quick]\n");
    return 64;
  }
  for (int i = 2; i < argc; ++i) quick = quick || std::string(argv[i]) == "--quick";
  try {
    Session s(argv[1]);
    std::printf("backend %s on %s\n", s.b->name, s.info.name);
    const std::pair<const char*, void (*)(Session&)> groups[] = {
        {"matmul", matmuls}, {"elementwise", elementwise}, {"rows", rowOps},  {"embedding", embedding},
        {"meanpool", meanPool}, {"attention", attention},  {"casts", casts}, {"copies", copies},
        {"streams", streams}};
    for (const auto& [name, fn] : groups) {
      const int before = failures;
      try {
        fn(s);
      } catch (const std::exception& e) {
        report(false, name, e.what());
      }
      std::printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
      std::fflush(stdout);
    }
    std::printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
  } catch (const caphost::tools::Unavailable& e) {
    std::printf("SKIP: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::printf("ERROR: %s\n", e.what());
    return 3;
  }
}
