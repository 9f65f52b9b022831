// caphost-backend-bench LIBRARY [--quick] [--gemm-only]: measures a backend library directly (no Node in the
// way) and prints one JSON object per line:
//   {"kind":"device","backend":"cuda","name":"NVIDIA H100 ...","computeMajor":9,...}
//   {"kind":"figure","metric":"gemm.bf16.4096","value":412.3,"unit":"TFLOP/s","detail":{...}}
// Exit 2 with {"kind":"skip","why":...} when the backend cannot run here, 1 on a failure.
//
// GEMM: C = A B with A, B and C in the dtype (f32, f16, bf16), f32 accumulation, square sizes;
// the time per GEMM is the wall time of `reps` back-to-back submissions and one synchronize,
// after two warm-up runs. Submission: a command list of one small op (or 8), submitted and
// synchronized in a loop (the round trip), and submitted alone (the host cost). Copies: one
// copy of the size and a synchronize, host memory from malloc (pageable, as the host gives it).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend_session.h"

using caphost::tools::Session;
using caphost::tools::tensor;
using Clock = std::chrono::steady_clock;
using i64 = std::int64_t;

namespace {

bool quick = false, gemmOnly = false;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

void figure(const std::string& metric, double value, const char* unit, const std::string& detail = "{}") {
  std::printf("{\"kind\":\"figure\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",\"detail\":%s}\n", metric.c_str(),
              value, unit, detail.c_str());
  std::fflush(stdout);
}

const char* dtypeName(ch_dtype d) { return d == CH_F32 ? "f32" : d == CH_F16 ? "f16" : "bf16"; }

void gemm(Session& s, ch_dtype dtype, i64 n) {
  const i64 elem = dtype == CH_F32 ? 4 : 2;
  const i64 bytes = n * n * elem;
  std::vector<std::uint8_t> host(static_cast<std::size_t>(bytes));
  // Small values in any dtype: bytes 0x3c00 (f16 1.0) / 0x3f80 (bf16 1.0) patterns would be
  // too regular; a fixed pseudo-random fill of low exponents keeps the products finite.
  std::uint32_t x = 12345;
  for (i64 i = 0; i < bytes; i += elem) {
    x = x * 1664525u + 1013904223u;
    const float v = (static_cast<float>(x >> 8) / 16777216.0f - 0.5f) * 0.1f;
    if (dtype == CH_F32) std::memcpy(&host[i], &v, 4);
    else {
      const std::uint16_t h = dtype == CH_F16 ? caphost::tools::toF16(v) : caphost::tools::toBf16(v);
      std::memcpy(&host[i], &h, 2);
    }
  }
  ch_buffer *A = s.upload(host.data(), bytes), *B = s.upload(host.data(), bytes), *C = s.alloc(bytes);
  s.check(s.b->synchronize(s.stream), "synchronize");
  ch_op o = caphost::tools::op(CH_OP_MATMUL, {tensor(A, dtype, {n, n}), tensor(B, dtype, {n, n})}, tensor(C, dtype, {n, n}));
  o.f0 = 1.0f;
  for (int w = 0; w < 2; ++w) s.check(s.run(&o, 1), "matmul warm-up");
  const double flop = 2.0 * n * n * n;
  // One timed batch of reps sized from the warm-up, aiming at ~0.5 s (0.1 s quick).
  const auto t0 = Clock::now();
  s.check(s.run(&o, 1), "matmul");
  const double one = seconds(t0, Clock::now());
  const int reps = std::max(1, static_cast<int>((quick ? 0.1 : 0.5) / std::max(one, 1e-6)));
  const auto t1 = Clock::now();
  for (int r = 0; r < reps; ++r) s.check(s.b->submit(s.stream, &o, 1), "submit matmul");
  s.check(s.b->synchronize(s.stream), "synchronize");
  const double per = seconds(t1, Clock::now()) / reps;
  figure(std::string("gemm.") + dtypeName(dtype) + "." + std::to_string(n), flop / per / 1e12, "TFLOP/s",
         "{\"ms\":" + std::to_string(per * 1e3) + ",\"reps\":" + std::to_string(reps) + "}");
  s.free(A);
  s.free(B);
  s.free(C);
}

void submission(Session& s) {
  const i64 n = 256;
  std::vector<float> v(n, 1.0f);
  ch_buffer *X = s.upload(v), *Y = s.alloc(n * 4);
  s.check(s.b->synchronize(s.stream), "synchronize");
  ch_op o = caphost::tools::op(CH_OP_SCALE, {tensor(X, CH_F32, {n})}, tensor(Y, CH_F32, {n}));
  o.f0 = 0.5f;
  std::vector<ch_op> eight(8, o);
  const int iters = quick ? 2000 : 20000;
  for (int i = 0; i < 200; ++i) s.check(s.run(&o, 1), "warm-up");

  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) s.check(s.run(&o, 1), "submit + synchronize");
  figure("submit.roundtrip.1op", seconds(t0, Clock::now()) / iters * 1e6, "µs",
         "{\"iters\":" + std::to_string(iters) + ",\"op\":\"scale 256\"}");

  t0 = Clock::now();
  for (int i = 0; i < iters; ++i) s.check(s.run(eight.data(), 8), "submit + synchronize");
  figure("submit.roundtrip.8op", seconds(t0, Clock::now()) / iters * 1e6, "µs", "{\"iters\":" + std::to_string(iters) + "}");

  // Host cost of submit alone, in batches small enough not to fill the launch queue.
  double total = 0;
  int count = 0;
  for (int batch = 0; batch < iters / 100; ++batch) {
    t0 = Clock::now();
    for (int i = 0; i < 100; ++i) s.check(s.b->submit(s.stream, &o, 1), "submit");
    total += seconds(t0, Clock::now());
    count += 100;
    s.check(s.b->synchronize(s.stream), "synchronize");
  }
  figure("submit.host.1op", total / count * 1e6, "µs", "{\"iters\":" + std::to_string(count) + "}");
  s.free(X);
  s.free(Y);
}

void copies(Session& s) {
  for (i64 mib : {1, 64, 256}) {
    if (quick && mib > 64) continue;
    const i64 bytes = mib << 20;
    std::vector<std::uint8_t> host(static_cast<std::size_t>(bytes), 7), back(static_cast<std::size_t>(bytes));
    ch_buffer* D = s.alloc(bytes);
    const int reps = quick ? 3 : (mib <= 1 ? 200 : 10);
    for (int w = 0; w < 2; ++w) {
      s.check(s.b->copy_to_device(s.stream, D, 0, host.data(), bytes), "copy_to_device");
      s.check(s.b->copy_to_host(s.stream, back.data(), D, 0, bytes), "copy_to_host");
      s.check(s.b->synchronize(s.stream), "synchronize");
    }
    auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) {
      s.check(s.b->copy_to_device(s.stream, D, 0, host.data(), bytes), "copy_to_device");
      s.check(s.b->synchronize(s.stream), "synchronize");
    }
    figure("copy.h2d." + std::to_string(mib) + "MiB", double(bytes) * reps / seconds(t0, Clock::now()) / 1e9, "GB/s");
    t0 = Clock::now();
    for (int r = 0; r < reps; ++r) {
      s.check(s.b->copy_to_host(s.stream, back.data(), D, 0, bytes), "copy_to_host");
      s.check(s.b->synchronize(s.stream), "synchronize");
    }
    figure("copy.d2h." + std::to_string(mib) + "MiB", double(bytes) * reps / seconds(t0, Clock::now()) / 1e9, "GB/s");
    s.free(D);
  }
}

void jsonString(const char* str) {
  std::putchar('"');
  for (; *str; ++str) {
    if (*str == '"' || *str == '\\') std::putchar('\\');
    if (static_cast<unsigned char>(*str) >= 0x20) std::putchar(*str);
  }
  std::putchar('"');
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: caphost-backend-bench LIBRARY [--quick] [--gemm-only]\n");
    return 64;
  }
  for (int i = 2; i < argc; ++i) {
    quick = quick || std::string(argv[i]) == "--quick";
    gemmOnly = gemmOnly || std::string(argv[i]) == "--gemm-only";
  }
  try {
    Session s(argv[1]);
    std::printf("{\"kind\":\"device\",\"backend\":");
    jsonString(s.b->name);
    std::printf(",\"name\":");
    jsonString(s.info.name);
    std::printf(",\"totalMemory\":%llu,\"computeMajor\":%d,\"computeMinor\":%d,\"multiprocessors\":%d}\n",
                static_cast<unsigned long long>(s.info.total_memory), s.info.compute_major, s.info.compute_minor,
                s.info.threads);
    std::fflush(stdout);
    if (!gemmOnly) {
      submission(s);
      copies(s);
    }
    const std::vector<i64> sizes = quick ? std::vector<i64>{1024, 2048} : std::vector<i64>{1024, 2048, 4096, 8192};
    for (ch_dtype d : {CH_F32, CH_F16, CH_BF16})
      for (i64 n : sizes) gemm(s, d, n);
    return 0;
  } catch (const caphost::tools::Unavailable& e) {
    std::printf("{\"kind\":\"skip\",\"why\":");
    jsonString(e.what());
    std::printf("}\n");
    return 2;
  } catch (const std::exception& e) {
    std::printf("{\"kind\":\"error\",\"why\":");
    jsonString(e.what());
    std::printf("}\n");
    return 1;
  }
}
