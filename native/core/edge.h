// The N-API edge shared by every concern in caphost_core: typed errors and argument
// parsing. Native code throws CodedError; only Guard() turns it into a JS Error, so no
// C++ exception ever unwinds through V8 and every JS-visible failure carries a `code`
// that matches src/errors.ts (INVALID_ARGUMENT, NATIVE_ERROR, SANDBOX_UNAVAILABLE).
#pragma once

#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace caphost {

struct CodedError : std::runtime_error {
  std::string code;
  int err;              // errno, 0 when the failure is not a syscall's
  std::string syscall;  // the syscall that failed, so a person can look it up
  CodedError(std::string c, const std::string& message, int e = 0, std::string sc = {})
      : std::runtime_error(message), code(std::move(c)), err(e), syscall(std::move(sc)) {}
};

inline CodedError InvalidArgument(const std::string& message) {
  return CodedError("INVALID_ARGUMENT", message);
}

inline CodedError SandboxUnavailable(const std::string& message) {
  return CodedError("SANDBOX_UNAVAILABLE", message);
}

// Captures errno at the call site: callers must build it before anything else can
// overwrite errno.
inline CodedError SysError(const char* syscall, const std::string& what, int e = errno) {
  return CodedError("NATIVE_ERROR", what + ": " + syscall + " failed: " + std::strerror(e), e,
                    syscall);
}

inline Napi::Error ToJsError(Napi::Env env, const CodedError& e) {
  Napi::Error js = Napi::Error::New(env, e.what());
  js.Set("code", Napi::String::New(env, e.code));
  if (e.err != 0) js.Set("errno", Napi::Number::New(env, e.err));
  if (!e.syscall.empty()) js.Set("syscall", Napi::String::New(env, e.syscall));
  return js;
}

// Wraps an export's body: whatever C++ throws reaches JS as an Error with a code.
template <typename Body>
Napi::Value Guard(const Napi::CallbackInfo& info, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a pending JS exception; node-addon-api rethrows it into JS
  } catch (const CodedError& e) {
    throw ToJsError(info.Env(), e);
  } catch (const std::exception& e) {
    throw ToJsError(info.Env(), CodedError("NATIVE_ERROR", e.what()));
  } catch (...) {
    throw ToJsError(info.Env(), CodedError("NATIVE_ERROR", "unknown native failure"));
  }
}

// Numbers arrive as doubles; anything that is not an exact integer in range is refused
// rather than truncated, because a truncated offset or length is a memory-safety bug.
inline double ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* name,
                         double min, double max) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw InvalidArgument(std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::floor(v) != v || v < min || v > max)
    throw InvalidArgument(std::string(name) + " must be an integer in [" +
                          std::to_string(static_cast<int64_t>(min)) + ", " +
                          std::to_string(static_cast<int64_t>(max)) + "]");
  return v;
}

inline int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(ArgInteger(info, i, "fd", 0, 0x7fffffff));
}

// A byte range the caller handed us: an ArrayBuffer, or any view over one. `holder` is
// the JS object whose lifetime keeps `data` valid.
struct Bytes {
  uint8_t* data;
  size_t length;
  Napi::Object holder;
};

inline Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() > i && info[i].IsArrayBuffer()) {
    auto ab = info[i].As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(ab.Data()), ab.ByteLength(), ab};
  }
  if (info.Length() > i && info[i].IsTypedArray()) {
    auto ta = info[i].As<Napi::TypedArray>();
    auto* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
    return {base + ta.ByteOffset(), ta.ByteLength(), ta};
  }
  if (info.Length() > i && info[i].IsDataView()) {
    auto dv = info[i].As<Napi::DataView>();
    auto* base = static_cast<uint8_t*>(dv.ArrayBuffer().Data());
    return {base + dv.ByteOffset(), dv.ByteLength(), dv};
  }
  throw InvalidArgument(std::string(name) + " must be an ArrayBuffer or a view over one");
}

}  // namespace caphost
