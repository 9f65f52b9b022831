// N-API face of the CPU GEMM: sgemm(a, b, c, options) and kernelInfo(). Validation
// errors carry code INVALID_ARGUMENT and name the operand; C++ exceptions are caught here.
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "addon_ops.h"
#include "fma_peak.h"
#include "gemm.h"
#include "ops.h"

namespace {

using caphost::cpu::KernelSet;

struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& msg) { throw ArgError("sgemm: " + msg); }

Napi::Error codedError(Napi::Env env, const std::string& code, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

struct F32View {
  float* data;
  std::int64_t length;
  const void* base;  // the ArrayBuffer's memory
  std::size_t byteOffset;
};

F32View float32(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(std::string(name) + " must be a Float32Array");
  auto arr = v.As<Napi::Float32Array>();
  return F32View{arr.Data(), static_cast<std::int64_t>(arr.ElementLength()), arr.ArrayBuffer().Data(),
                 arr.ByteOffset()};
}

int dim(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) fail(std::string("options.") + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<std::int64_t>(d)))
    fail(std::string("options.") + name + " must be a non-negative integer");
  return static_cast<int>(d);
}

bool flag(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) fail(std::string("options.") + name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

void needs(const F32View& view, const char* name, std::int64_t count, const char* expr) {
  if (view.length < count)
    fail(std::string(name) + " has " + std::to_string(view.length) + " elements, " + expr + " needs " +
         std::to_string(count));
}

bool overlaps(const F32View& x, const F32View& y) {
  if (x.length == 0 || y.length == 0) return false;
  if (x.base != y.base) return false;
  const std::size_t x0 = x.byteOffset, x1 = x0 + x.length * 4, y0 = y.byteOffset, y1 = y0 + y.length * 4;
  return x0 < y1 && y0 < x1;
}

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() < 4 || !info[3].IsObject()) fail("expected (a, b, c, options)");
    const F32View a = float32(info[0], "a"), b = float32(info[1], "b"), c = float32(info[2], "c");
    Napi::Object o = info[3].As<Napi::Object>();
    const int m = dim(o, "m"), n = dim(o, "n"), k = dim(o, "k");
    const bool transA = flag(o, "transA"), transB = flag(o, "transB");
    needs(a, "a", static_cast<std::int64_t>(m) * k, "m*k");
    needs(b, "b", static_cast<std::int64_t>(k) * n, "k*n");
    needs(c, "c", static_cast<std::int64_t>(m) * n, "m*n");
    if (overlaps(c, a) || overlaps(c, b)) fail("c must not overlap a or b");
    const float* bias = nullptr;
    Napi::Value bv = o.Get("bias");
    if (!bv.IsUndefined() && !bv.IsNull()) {
      const F32View bs = float32(bv, "bias");
      if (bs.length != n)
        fail("bias has " + std::to_string(bs.length) + " elements, n needs " + std::to_string(n));
      if (overlaps(c, bs)) fail("c must not overlap bias");
      bias = bs.data;
    }
    int activation = caphost::cpu::kActNone;
    Napi::Value av = o.Get("activation");
    if (!av.IsUndefined()) {
      const std::string s = av.IsString() ? av.As<Napi::String>().Utf8Value() : "";
      if (s == "none") activation = caphost::cpu::kActNone;
      else if (s == "relu") activation = caphost::cpu::kActRelu;
      else if (s == "gelu") activation = caphost::cpu::kActGeluTanh;
      else fail("options.activation must be 'none', 'relu' or 'gelu'");
    }
    int threads = 1;
    if (!o.Get("threads").IsUndefined()) {
      threads = dim(o, "threads");
      if (threads < 1 || threads > 64) fail("options.threads must be between 1 and 64");
    }
    const KernelSet* ks = nullptr;
    Napi::Value fv = o.Get("forceIsa");
    if (!fv.IsUndefined()) {
      const std::string isa = fv.IsString() ? fv.As<Napi::String>().Utf8Value() : "";
      ks = caphost::cpu::kernelSetFor(isa.c_str());
      if (ks == nullptr) fail("options.forceIsa '" + isa + "' is unknown or not supported by this CPU");
    }
    // Dense operands: the leading dimension is the stored row length (at least 1 for empty ones).
    const int lda = std::max(1, transA ? m : k), ldb = std::max(1, transB ? k : n), ldc = std::max(1, n);
    caphost::cpu::sgemm(ks, m, n, k, a.data, lda, transA, b.data, ldb, transB, c.data, ldc, bias, activation,
                        threads);
    return env.Undefined();
  } catch (const ArgError& e) {
    codedError(env, "INVALID_ARGUMENT", e.what()).ThrowAsJavaScriptException();
  } catch (const std::invalid_argument& e) {
    codedError(env, "INVALID_ARGUMENT", std::string(e.what())).ThrowAsJavaScriptException();
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    codedError(env, "NATIVE_ERROR", std::string("sgemm: ") + e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value KernelInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const KernelSet* ks = caphost::cpu::defaultKernelSet();
  out.Set("isa", Napi::String::New(env, ks->isa));
  out.Set("mr", Napi::Number::New(env, ks->mr));
  out.Set("nr", Napi::Number::New(env, ks->nr));
  Napi::Array available = Napi::Array::New(env);
  std::uint32_t i = 0;
  for (const char* isa : {"avx512f", "avx512f-12x32", "avx2", "neon", "scalar"})
    if (caphost::cpu::kernelSetFor(isa) != nullptr) available.Set(i++, Napi::String::New(env, isa));
  out.Set("available", available);
  out.Set("opsIsa", Napi::String::New(env, caphost::cpu::ops::defaultOps()->isa));
  Napi::Array opsAvailable = Napi::Array::New(env);
  std::uint32_t j = 0;
  for (const char* isa : {"avx2", "scalar"})
    if (caphost::cpu::ops::opsFor(isa) != nullptr) opsAvailable.Set(j++, Napi::String::New(env, isa));
  out.Set("opsAvailable", opsAvailable);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("kernelInfo", Napi::Function::New(env, KernelInfo, "kernelInfo"));
  exports.Set("fmaPeak", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const double seconds = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0.5;
    const auto peak = caphost::cpu::fmaPeak(seconds > 0 && seconds <= 10 ? seconds : 0.5);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("isa", peak.isa);
    o.Set("gflops", peak.gflops);
    return o;
  }, "fmaPeak"));
  caphostRegisterOps(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(caphost_cpu, Init)
