// N-API face of the f32 op kernels (ops.h): synchronous functions over typed arrays with
// shape numbers in an options object. Validation errors carry code INVALID_ARGUMENT and
// name the op and the operand. An output may be the very same array as an input of equal
// element type for the elementwise and row ops; any other overlap is refused.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "addon_ops.h"
#include "ops.h"

namespace {

namespace ops = caphost::cpu::ops;
using i64 = std::int64_t;

struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct View {
  void* data;
  i64 length;
  const void* base;
  std::size_t byteOffset, bytes;
};

struct Call {
  const char* op;
  const Napi::CallbackInfo& info;
  Napi::Object o;

  [[noreturn]] void fail(const std::string& msg) const { throw ArgError(std::string(op) + ": " + msg); }

  View array(std::size_t i, const char* name, napi_typedarray_type type, const char* typeName) const {
    Napi::Value v = info[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      fail(std::string(name) + " must be " + typeName);
    auto arr = v.As<Napi::TypedArray>();
    void* data = static_cast<std::uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
    return View{data, static_cast<i64>(arr.ElementLength()), arr.ArrayBuffer().Data(), arr.ByteOffset(),
                arr.ByteLength()};
  }
  View f32(std::size_t i, const char* name) const { return array(i, name, napi_float32_array, "a Float32Array"); }
  View u16(std::size_t i, const char* name) const { return array(i, name, napi_uint16_array, "a Uint16Array"); }
  View i32(std::size_t i, const char* name) const { return array(i, name, napi_int32_array, "an Int32Array"); }

  i64 dim(const char* name) const {
    Napi::Value v = o.Get(name);
    if (!v.IsNumber()) fail(std::string("options.") + name + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<i64>(d)))
      fail(std::string("options.") + name + " must be a non-negative integer");
    return static_cast<i64>(d);
  }
  float number(const char* name, double fallback, bool positive) const {
    Napi::Value v = o.Get(name);
    if (v.IsUndefined()) return static_cast<float>(fallback);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || (positive && !(d > 0)))
      fail(std::string("options.") + name + (positive ? " must be a positive finite number" : " must be a finite number"));
    return static_cast<float>(d);
  }
  bool flag(const char* name) const {
    Napi::Value v = o.Get(name);
    if (v.IsUndefined()) return false;
    if (!v.IsBoolean()) fail(std::string("options.") + name + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  const ops::OpsTable* isa() const {
    Napi::Value v = o.Get("forceIsa");
    if (v.IsUndefined()) return ops::defaultOps();
    const std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
    const ops::OpsTable* t = ops::opsFor(name.c_str());
    if (t == nullptr) fail("options.forceIsa '" + name + "' is unknown or not supported by this CPU");
    return t;
  }
  void needs(const View& v, const char* name, i64 count, const char* expr) const {
    if (v.length < count)
      fail(std::string(name) + " has " + std::to_string(v.length) + " elements, " + expr + " needs " +
           std::to_string(count));
  }
  // out may equal `in` exactly (same memory, same element size) when `sameOk`, else must not overlap.
  void distinct(const View& out, const char* outName, const View& in, const char* inName, bool sameOk) const {
    if (out.bytes == 0 || in.bytes == 0 || out.base != in.base) return;
    if (sameOk && out.byteOffset == in.byteOffset && out.bytes >= in.bytes) return;
    const std::size_t a0 = out.byteOffset, a1 = a0 + out.bytes, b0 = in.byteOffset, b1 = b0 + in.bytes;
    if (a0 < b1 && b0 < a1)
      fail(std::string(outName) + (sameOk ? " must be the same array as " : " must not overlap ") + inName +
           (sameOk ? " or not overlap it" : ""));
  }
};

float* F(const View& v) { return static_cast<float*>(v.data); }

Napi::Value guarded(const Napi::CallbackInfo& info, const char* op, std::size_t arity,
                    const std::function<void(const Call&)>& body) {
  Napi::Env env = info.Env();
  auto coded = [&](const char* code, const std::string& msg) {
    Napi::Error err = Napi::Error::New(env, msg);
    err.Set("code", Napi::String::New(env, code));
    err.ThrowAsJavaScriptException();
  };
  try {
    Napi::Object o = Napi::Object::New(env);
    if (info.Length() > arity && !info[arity].IsUndefined()) {
      if (!info[arity].IsObject()) throw ArgError(std::string(op) + ": options must be an object");
      o = info[arity].As<Napi::Object>();
    }
    if (info.Length() < arity) throw ArgError(std::string(op) + ": expected " + std::to_string(arity) + " arrays");
    body(Call{op, info, o});
  } catch (const ArgError& e) {
    coded("INVALID_ARGUMENT", e.what());
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    coded("NATIVE_ERROR", std::string(op) + ": " + e.what());
  }
  return env.Undefined();
}

// (a, b, out, {rows, cols, broadcast?, forceIsa?})
template <bool kMul>
Napi::Value Binary(const Napi::CallbackInfo& info) {
  return guarded(info, kMul ? "mul" : "add", 3, [](const Call& c) {
    const View a = c.f32(0, "a"), b = c.f32(1, "b"), out = c.f32(2, "out");
    const i64 rows = c.dim("rows"), cols = c.dim("cols");
    const bool bc = c.flag("broadcast");
    c.needs(a, "a", rows * cols, "rows*cols");
    c.needs(b, "b", bc ? cols : rows * cols, bc ? "cols" : "rows*cols");
    c.needs(out, "out", rows * cols, "rows*cols");
    c.distinct(out, "out", a, "a", true);
    c.distinct(out, "out", b, "b", !bc);
    (kMul ? ops::mul : ops::add)(c.isa(), F(a), F(b), F(out), rows, cols, bc);
  });
}

// (x, out, options): x.length elements; out at least as long.
enum Unary { kScale, kRelu, kSilu, kGelu };
template <Unary kOp>
Napi::Value UnaryOp(const Napi::CallbackInfo& info) {
  static const char* names[] = {"scale", "relu", "silu", "gelu"};
  return guarded(info, names[kOp], 2, [](const Call& c) {
    const View x = c.f32(0, "x"), out = c.f32(1, "out");
    c.needs(out, "out", x.length, "x.length");
    c.distinct(out, "out", x, "x", true);
    const ops::OpsTable* t = c.isa();
    if (kOp == kScale) return t->scale(F(x), F(out), x.length, c.number("alpha", 1.0, false));
    if (kOp == kRelu) return t->relu(F(x), F(out), x.length);
    if (kOp == kSilu) return t->silu(F(x), F(out), x.length);
    Napi::Value form = c.o.Get("approximate");
    const std::string s = form.IsUndefined() ? "erf" : form.IsString() ? form.As<Napi::String>().Utf8Value() : "";
    if (s != "erf" && s != "tanh") c.fail("options.approximate must be 'erf' or 'tanh'");
    (s == "erf" ? t->geluErf : t->geluTanh)(F(x), F(out), x.length);
  });
}

// Row ops over the last axis: (x, [gamma, [beta,]] out, {rows, cols, eps?, forceIsa?})
enum RowOp { kSoftmax, kLayerNorm, kRmsNorm, kL2 };
template <RowOp kOp>
Napi::Value RowOpFn(const Napi::CallbackInfo& info) {
  static const char* names[] = {"softmax", "layerNorm", "rmsNorm", "l2Normalize"};
  static const std::size_t arity[] = {2, 4, 3, 2};
  return guarded(info, names[kOp], arity[kOp], [](const Call& c) {
    const std::size_t last = arity[kOp] - 1;
    const View x = c.f32(0, "x"), out = c.f32(last, "out");
    const i64 rows = c.dim("rows"), cols = c.dim("cols");
    c.needs(x, "x", rows * cols, "rows*cols");
    c.needs(out, "out", rows * cols, "rows*cols");
    c.distinct(out, "out", x, "x", true);
    View gamma{}, beta{};
    if (kOp == kLayerNorm || kOp == kRmsNorm) {
      gamma = c.f32(1, "gamma");
      c.needs(gamma, "gamma", cols, "cols");
      c.distinct(out, "out", gamma, "gamma", false);
    }
    if (kOp == kLayerNorm) {
      beta = c.f32(2, "beta");
      c.needs(beta, "beta", cols, "cols");
      c.distinct(out, "out", beta, "beta", false);
    }
    const ops::OpsTable* t = c.isa();
    if (kOp == kSoftmax) return ops::softmax(t, F(x), F(out), rows, cols);
    if (kOp == kL2) return ops::l2Normalize(t, F(x), F(out), rows, cols, c.number("eps", 1e-12, true));
    const float eps = c.number("eps", kOp == kLayerNorm ? 1e-5 : 1e-6, true);
    if (kOp == kLayerNorm) return ops::layerNorm(t, F(x), F(gamma), F(beta), F(out), rows, cols, eps);
    ops::rmsNorm(t, F(x), F(gamma), F(out), rows, cols, eps);
  });
}

// (table, ids, out, {vocab, hidden})
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  return guarded(info, "embedding", 3, [](const Call& c) {
    const View table = c.f32(0, "table"), ids = c.i32(1, "ids"), out = c.f32(2, "out");
    const i64 vocab = c.dim("vocab"), hidden = c.dim("hidden");
    c.needs(table, "table", vocab * hidden, "vocab*hidden");
    c.needs(out, "out", ids.length * hidden, "ids.length*hidden");
    c.distinct(out, "out", table, "table", false);
    c.distinct(out, "out", ids, "ids", false);
    const auto* id = static_cast<const std::int32_t*>(ids.data);
    for (i64 i = 0; i < ids.length; ++i)
      if (id[i] < 0 || id[i] >= vocab)
        c.fail("ids[" + std::to_string(i) + "] = " + std::to_string(id[i]) + " is outside [0, vocab)");
    ops::embedding(F(table), id, ids.length, F(out), hidden);
  });
}

// (x, mask, out, {batch, seq, hidden, forceIsa?})
Napi::Value MeanPool(const Napi::CallbackInfo& info) {
  return guarded(info, "meanPool", 3, [](const Call& c) {
    const View x = c.f32(0, "x"), mask = c.i32(1, "mask"), out = c.f32(2, "out");
    const i64 batch = c.dim("batch"), seq = c.dim("seq"), hidden = c.dim("hidden");
    c.needs(x, "x", batch * seq * hidden, "batch*seq*hidden");
    c.needs(mask, "mask", batch * seq, "batch*seq");
    c.needs(out, "out", batch * hidden, "batch*hidden");
    c.distinct(out, "out", x, "x", false);
    c.distinct(out, "out", mask, "mask", false);
    ops::meanPool(c.isa(), F(x), static_cast<const std::int32_t*>(mask.data), F(out), batch, seq, hidden);
  });
}

// Casts: (src, dst, {forceIsa?}); dst at least src.length elements, no overlap.
enum Cast { kToF16, kFromF16, kToBf16, kFromBf16 };
template <Cast kOp>
Napi::Value CastFn(const Napi::CallbackInfo& info) {
  static const char* names[] = {"castF32ToF16", "castF16ToF32", "castF32ToBf16", "castBf16ToF32"};
  return guarded(info, names[kOp], 2, [](const Call& c) {
    const bool fromF32 = kOp == kToF16 || kOp == kToBf16;
    const View src = fromF32 ? c.f32(0, "src") : c.u16(0, "src");
    const View dst = fromF32 ? c.u16(1, "dst") : c.f32(1, "dst");
    c.needs(dst, "dst", src.length, "src.length");
    c.distinct(dst, "dst", src, "src", false);
    const ops::OpsTable* t = c.isa();
    auto* h = static_cast<std::uint16_t*>(fromF32 ? dst.data : src.data);
    if (kOp == kToF16) t->f32ToF16(F(src), h, src.length);
    if (kOp == kFromF16) t->f16ToF32(h, F(dst), src.length);
    if (kOp == kToBf16) t->f32ToBf16(F(src), h, src.length);
    if (kOp == kFromBf16) t->bf16ToF32(h, F(dst), src.length);
  });
}

}  // namespace

void caphostRegisterOps(Napi::Env env, Napi::Object exports) {
  auto put = [&](const char* name, Napi::Function::Callback fn) {
    exports.Set(name, Napi::Function::New(env, fn, name));
  };
  put("add", Binary<false>);
  put("mul", Binary<true>);
  put("scale", UnaryOp<kScale>);
  put("relu", UnaryOp<kRelu>);
  put("silu", UnaryOp<kSilu>);
  put("gelu", UnaryOp<kGelu>);
  put("softmax", RowOpFn<kSoftmax>);
  put("layerNorm", RowOpFn<kLayerNorm>);
  put("rmsNorm", RowOpFn<kRmsNorm>);
  put("l2Normalize", RowOpFn<kL2>);
  put("embedding", Embedding);
  put("meanPool", MeanPool);
  put("castF32ToF16", CastFn<kToF16>);
  put("castF16ToF32", CastFn<kFromF16>);
  put("castF32ToBf16", CastFn<kToBf16>);
  put("castBf16ToF32", CastFn<kFromBf16>);
}
