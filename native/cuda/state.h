// The CUDA backend's objects behind the opaque handles of caphost_backend.h, and the small
// helpers every host-side file shares (error text per thread, the current device per thread).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../include/caphost_backend.h"

struct ch_buffer {
  void* ptr;             // device memory, at least `bytes` long
  std::uint64_t bytes;   // what the host asked for
  std::uint64_t block;   // the pool block size behind ptr
  std::int32_t device;
};

namespace caphost::cuda {

class Staging;

// A D2H copy whose bytes landed in pinned staging and still have to reach the host's memory.
struct PendingDownload {
  void* dst;
  const void* staged;
  std::uint64_t bytes;
};

}  // namespace caphost::cuda

struct ch_stream {
  std::int32_t device;
  cudaStream_t stream;
  caphost::cuda::Staging* staging;
  // Set on the device by kernels whose failure depends on data (embedding ids):
  // [0] = 1 when an id was out of range, [1] = the first such id, [2] = the table's rows.
  int* deviceFlags;
  int* hostFlags;        // pinned mirror read at synchronize
  bool checkFlags;       // an op since the last synchronize may have set deviceFlags
  std::vector<caphost::cuda::PendingDownload> downloads;
  void* cublasHandle;    // the optional cuBLAS path's handle for this stream, made on first use
};

namespace caphost::cuda {

// Sets the message last_error() returns on this thread and passes `status` through.
ch_status fail(ch_status status, const std::string& message);
// fail() with the CUDA error's name and text appended to `what`.
ch_status failCuda(cudaError_t err, const std::string& what);
// cudaSetDevice only when this thread's current device differs.
ch_status useDevice(std::int32_t device);
// Compute capability major*10+minor of a device initialised by init().
int computeOf(std::int32_t device);
// True when init() chose the optional cuBLAS GEMM path (CAPHOST_CUDA_GEMM=cublas).
bool gemmWithCublas();

}  // namespace caphost::cuda
