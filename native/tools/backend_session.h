// A backend library opened by path for the tools (conformance, bench): dlopen, ABI check,
// init, and small helpers to move host vectors in and out of device buffers on one stream.
#pragma once

#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "../include/caphost_backend.h"

namespace caphost::tools {

struct Unavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Session {
 public:
  // Throws Unavailable when the backend cannot run here (init's reason), runtime_error when
  // the library itself is unusable.
  explicit Session(const char* path) {
    lib_ = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib_) throw std::runtime_error(std::string("dlopen: ") + dlerror());
    auto entry = reinterpret_cast<ch_backend_entry_fn>(dlsym(lib_, CH_BACKEND_ENTRY_SYMBOL));
    if (!entry) throw std::runtime_error("the library does not export " CH_BACKEND_ENTRY_SYMBOL);
    b = entry(CH_BACKEND_ABI_VERSION);
    if (!b || b->abi_version != CH_BACKEND_ABI_VERSION || b->struct_size != sizeof(ch_backend))
      throw std::runtime_error("the library does not serve backend ABI " + std::to_string(CH_BACKEND_ABI_VERSION));
    char why[512] = "";
    if (ch_status s = b->init(why, sizeof why); s != CH_OK)
      throw Unavailable(why[0] ? why : b->last_error());
    initialised_ = true;
    if (b->device_count() < 1) throw Unavailable("the backend reports no device");
    b->device_info(0, &info);
    stream = newStream();
  }
  ~Session() {
    for (ch_buffer* buf : buffers_) b->buffer_free(buf);
    for (ch_stream* s : streams_) b->stream_destroy(s);
    if (initialised_) b->shutdown();
    // The library stays loaded: a driver's threads may still run its code.
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  ch_stream* newStream() {
    ch_stream* s = nullptr;
    check(b->stream_create(0, &s), "stream_create");
    streams_.push_back(s);
    return s;
  }
  ch_buffer* alloc(std::uint64_t bytes) {
    ch_buffer* buf = nullptr;
    check(b->buffer_alloc(0, bytes, &buf), "buffer_alloc");
    buffers_.push_back(buf);
    return buf;
  }
  void free(ch_buffer* buf) {
    for (auto it = buffers_.begin(); it != buffers_.end(); ++it)
      if (*it == buf) {
        buffers_.erase(it);
        b->buffer_free(buf);
        return;
      }
  }
  void check(ch_status s, const char* what) const {
    if (s != CH_OK) throw std::runtime_error(std::string(what) + " failed (" + std::to_string(s) + "): " + b->last_error());
  }
  ch_buffer* upload(const void* data, std::uint64_t bytes) {
    ch_buffer* buf = alloc(bytes);
    check(b->copy_to_device(stream, buf, 0, data, bytes), "copy_to_device");
    return buf;
  }
  template <typename T>
  ch_buffer* upload(const std::vector<T>& v) {
    return upload(v.data(), v.size() * sizeof(T));
  }
  template <typename T>
  std::vector<T> download(ch_buffer* buf, std::size_t count) {
    std::vector<T> out(count);
    check(b->copy_to_host(stream, out.data(), buf, 0, count * sizeof(T)), "copy_to_host");
    check(b->synchronize(stream), "synchronize");
    return out;
  }
  // submit + synchronize; returns the status of whichever failed first.
  ch_status run(const ch_op* ops, std::uint32_t count) {
    const ch_status s = b->submit(stream, ops, count);
    const ch_status t = b->synchronize(stream);
    return s != CH_OK ? s : t;
  }

  const ch_backend* b = nullptr;
  ch_device_info info{};
  ch_stream* stream = nullptr;

 private:
  void* lib_ = nullptr;
  bool initialised_ = false;
  std::vector<ch_buffer*> buffers_;
  std::vector<ch_stream*> streams_;
};

inline ch_tensor tensor(ch_buffer* buf, ch_dtype dtype, std::vector<std::int64_t> shape, std::uint64_t offset = 0) {
  ch_tensor t{};
  t.buffer = buf;
  t.offset = offset;
  t.dtype = dtype;
  t.rank = static_cast<std::int32_t>(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  return t;
}

inline ch_op op(ch_op_kind kind, std::vector<ch_tensor> inputs, ch_tensor out) {
  ch_op o{};
  o.kind = kind;
  o.n_inputs = static_cast<std::int32_t>(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) o.inputs[i] = inputs[i];
  o.output = out;
  return o;
}

// Host-side f16/bf16 conversions, round to nearest even (the reference the kernels must match).
inline std::uint32_t bitsOf(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float floatOf(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline std::uint16_t toBf16(float f) {
  const std::uint32_t x = bitsOf(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float fromBf16(std::uint16_t h) { return floatOf(static_cast<std::uint32_t>(h) << 16); }
inline std::uint16_t toF16(float f) {
  const std::uint32_t x = bitsOf(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return a == 0x7f800000u ? (sign | 0x7c00u) : static_cast<std::uint16_t>(sign | 0x7e00u);
  const int e = static_cast<int>(a >> 23) - 127;
  if (e > 15) return sign | 0x7c00u;
  if (e >= -14) {
    std::uint32_t h = (static_cast<std::uint32_t>(e + 15) << 10) | ((a & 0x7fffffu) >> 13);
    const std::uint32_t rest = a & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  if (e < -25) return sign;
  const std::uint32_t m = (a & 0x7fffffu) | 0x800000u;
  const int shift = -e - 1;  // 14..24
  std::uint32_t h = m >> shift;
  const std::uint32_t rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}
inline float fromF16(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return floatOf(sign | 0x7f800000u | (m << 13));
  if (e != 0) return floatOf(sign | ((e + 112u) << 23) | (m << 13));
  const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

}  // namespace caphost::tools
