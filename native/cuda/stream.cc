// Streams: a non-blocking CUDA stream, its pinned staging, and the device flag words that
// data-dependent failures (embedding ids) set and synchronize reads.
#include <cstring>
#include <new>
#include <string>

#include "staging.h"
#ifdef CAPHOST_HAVE_CUBLAS
#include "gemm_cublas.h"
#endif
#include "stream_ops.h"

namespace caphost::cuda {

namespace {
constexpr std::size_t kFlagBytes = 3 * sizeof(int);

char* at(ch_buffer* b, std::uint64_t offset) { return static_cast<char*>(b->ptr) + offset; }
}  // namespace

ch_status streamCreate(std::int32_t device, ch_stream** out) {
  if (!out) return fail(CH_ERR_INVALID, "stream_create: out is null");
  if (ch_status s = useDevice(device); s != CH_OK) return s;
  auto* st = new (std::nothrow) ch_stream{};
  if (!st) return fail(CH_ERR_OUT_OF_MEMORY, "stream_create: host out of memory");
  st->device = device;
  cudaError_t e = cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void**>(&st->deviceFlags), kFlagBytes);
  if (e == cudaSuccess) e = cudaHostAlloc(reinterpret_cast<void**>(&st->hostFlags), kFlagBytes, cudaHostAllocPortable);
  if (e == cudaSuccess) e = cudaMemsetAsync(st->deviceFlags, 0, kFlagBytes, st->stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st->stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    streamDestroy(st);
    return failCuda(e, "stream_create");
  }
  st->staging = new (std::nothrow) Staging();
  if (!st->staging) {
    streamDestroy(st);
    return fail(CH_ERR_OUT_OF_MEMORY, "stream_create: host out of memory");
  }
  *out = st;
  return CH_OK;
}

void streamDestroy(ch_stream* st) {
  if (!st) return;
  if (useDevice(st->device) == CH_OK && st->stream) cudaStreamSynchronize(st->stream);
#ifdef CAPHOST_HAVE_CUBLAS
  cublas::release(st);
#endif
  delete st->staging;
  if (st->deviceFlags) cudaFree(st->deviceFlags);
  if (st->hostFlags) cudaFreeHost(st->hostFlags);
  if (st->stream) cudaStreamDestroy(st->stream);
  cudaGetLastError();
  delete st;
}

ch_status copyToDevice(ch_stream* st, ch_buffer* dst, std::uint64_t offset, const void* src, std::uint64_t bytes) {
  if (bytes == 0) return CH_OK;
  if (ch_status s = useDevice(st->device); s != CH_OK) return s;
  const void* from = src;
  if (void* staged = st->staging->take(bytes)) {
    std::memcpy(staged, src, bytes);
    from = staged;
  }
  // Without staging (a large copy, or pinned memory ran out) the driver copies from pageable
  // memory and returns once the source has been read.
  if (cudaError_t e = cudaMemcpyAsync(at(dst, offset), from, bytes, cudaMemcpyHostToDevice, st->stream);
      e != cudaSuccess) {
    cudaGetLastError();
    return failCuda(e, "copy_to_device of " + std::to_string(bytes) + " bytes");
  }
  return CH_OK;
}

ch_status copyToHost(ch_stream* st, void* dst, ch_buffer* src, std::uint64_t offset, std::uint64_t bytes) {
  if (bytes == 0) return CH_OK;
  if (ch_status s = useDevice(st->device); s != CH_OK) return s;
  void* staged = st->staging->take(bytes);
  if (cudaError_t e = cudaMemcpyAsync(staged ? staged : dst, at(src, offset), bytes, cudaMemcpyDeviceToHost, st->stream);
      e != cudaSuccess) {
    cudaGetLastError();
    return failCuda(e, "copy_to_host of " + std::to_string(bytes) + " bytes");
  }
  if (staged) st->downloads.push_back(PendingDownload{dst, staged, bytes});
  return CH_OK;
}

ch_status synchronize(ch_stream* st) {
  if (ch_status s = useDevice(st->device); s != CH_OK) return s;
  const bool readFlags = st->checkFlags;
  cudaError_t e = cudaSuccess;
  if (readFlags) e = cudaMemcpyAsync(st->hostFlags, st->deviceFlags, kFlagBytes, cudaMemcpyDeviceToHost, st->stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(st->stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    st->downloads.clear();
    st->staging->reset();
    return failCuda(e, "the CUDA stream failed");
  }
  for (const PendingDownload& d : st->downloads) std::memcpy(d.dst, d.staged, d.bytes);
  st->downloads.clear();
  st->staging->reset();
  st->checkFlags = false;
  if (readFlags && st->hostFlags[0] != 0) {
    const int id = st->hostFlags[1], vocab = st->hostFlags[2];
    cudaMemsetAsync(st->deviceFlags, 0, kFlagBytes, st->stream);  // ordered before any later op
    return fail(CH_ERR_INVALID, "embedding: id " + std::to_string(id) + " is outside the table's rows [0, " +
                                    std::to_string(vocab) + ")");
  }
  return CH_OK;
}

}  // namespace caphost::cuda
