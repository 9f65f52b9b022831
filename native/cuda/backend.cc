// The CUDA backend's entry point and device layer: init() turns "no driver", "no device" and
// "driver too old" into words (cudart is linked statically and finds libcuda.so.1 itself, so
// this library loads on machines without a driver), devices are the visible GPUs this build
// has kernels for, buffers come from the pooling allocator.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "allocator.h"
#ifdef CAPHOST_HAVE_CUBLAS
#include "gemm_cublas.h"
#endif
#include "kernels.h"
#include "state.h"
#include "stream_ops.h"

namespace caphost::cuda {

namespace {

struct Device {
  int ordinal;  // CUDA device ordinal
  ch_device_info info;
  int compute;  // major*10+minor
};

std::vector<Device>& devices() {
  static std::vector<Device> d;
  return d;
}

thread_local std::string tlsError;
thread_local int tlsDevice = -1;
bool useCublas = false;

// CAPHOST_CUDA_GEMM: unset or "own" runs this library's GEMM kernels; "cublas" the optional
// cuBLAS path, which must then be compiled in and loadable. "" when fine, else the reason.
std::string chooseGemm() {
  const char* v = std::getenv("CAPHOST_CUDA_GEMM");
  const std::string want = v ? v : "";
  useCublas = false;
  if (want.empty() || want == "own") return "";
  if (want != "cublas") return "CAPHOST_CUDA_GEMM must be 'own' or 'cublas', not '" + want + "'";
#ifdef CAPHOST_HAVE_CUBLAS
  if (std::string why = cublas::load(); !why.empty()) return "CAPHOST_CUDA_GEMM=cublas, but " + why;
  useCublas = true;
  return "";
#else
  return "CAPHOST_CUDA_GEMM=cublas, but this build has no cuBLAS path (cublas_v2.h was not found when it was built)";
#endif
}

std::string version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

ch_status unavailable(char* why, std::size_t len, const std::string& reason) {
  if (why && len) std::snprintf(why, len, "%s", reason.c_str());
  fail(CH_ERR_UNAVAILABLE, reason);
  return CH_ERR_UNAVAILABLE;
}

ch_status init(char* why, std::size_t len) {
  devices().clear();
  if (std::string reason = chooseGemm(); !reason.empty()) return unavailable(why, len, reason);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  if (driver == 0)
    return unavailable(why, len, "no NVIDIA driver: libcuda.so.1 could not be loaded (install the NVIDIA driver)");
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver || (err != cudaSuccess && driver / 1000 < CUDART_VERSION / 1000))
    return unavailable(why, len, "the NVIDIA driver supports CUDA " + version(driver) + ", older than the CUDA " +
                                     version(CUDART_VERSION) + " this library was built with: update the driver");
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    const char* vis = std::getenv("CUDA_VISIBLE_DEVICES");
    return unavailable(why, len, std::string("no CUDA device is visible") +
                                     (vis ? std::string(" (CUDA_VISIBLE_DEVICES=") + vis + ")" : std::string()));
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    return unavailable(why, len, std::string("CUDA could not start: ") + cudaGetErrorName(err) + ": " +
                                     cudaGetErrorString(err));
  }
  std::string skipped;
  for (int ord = 0; ord < count; ++ord) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, ord) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    const int cc = p.major * 10 + p.minor;
    std::string reason;
    if (cc < 75) {
      reason = "compute capability " + std::to_string(p.major) + "." + std::to_string(p.minor) +
               " is below the 7.5 this build targets";
    } else if (cudaSetDevice(ord) != cudaSuccess || cudaFree(nullptr) != cudaSuccess) {
      reason = std::string("its context could not be created: ") + cudaGetErrorString(cudaGetLastError());
    } else if (cudaError_t ke = checkKernelImage(); ke != cudaSuccess) {
      cudaGetLastError();
      reason = std::string("this build has no kernels it can run: ") + cudaGetErrorString(ke);
    }
    if (!reason.empty()) {
      skipped += (skipped.empty() ? "" : "; ") + std::string(p.name) + " (device " + std::to_string(ord) + "): " + reason;
      continue;
    }
    Device d{};
    d.ordinal = ord;
    d.compute = cc;
    std::memcpy(d.info.name, p.name, std::min(sizeof d.info.name - 1, std::strlen(p.name)));
    d.info.total_memory = p.totalGlobalMem;
    d.info.host_visible = 0;
    d.info.compute_major = p.major;
    d.info.compute_minor = p.minor;
    d.info.threads = p.multiProcessorCount;
    devices().push_back(d);
  }
  tlsDevice = -1;
  if (devices().empty()) return unavailable(why, len, "no usable CUDA device: " + skipped);
  Allocator::configure(static_cast<int>(devices().size()));
  if (why && len) why[0] = '\0';
  return CH_OK;
}

void shutdown() {
  Allocator::releaseAll();
  devices().clear();
  tlsDevice = -1;
}

std::int32_t deviceCount() { return static_cast<std::int32_t>(devices().size()); }

ch_status deviceInfo(std::int32_t device, ch_device_info* out) {
  if (device < 0 || device >= deviceCount() || !out)
    return fail(CH_ERR_INVALID, "device_info: no CUDA device " + std::to_string(device));
  *out = devices()[device].info;
  return CH_OK;
}

ch_status bufferAlloc(std::int32_t device, std::uint64_t bytes, ch_buffer** out) {
  if (!out) return fail(CH_ERR_INVALID, "buffer_alloc: out is null");
  return Allocator::alloc(device, bytes, out);
}

void bufferFree(ch_buffer* b) { Allocator::release(b); }
void* bufferHostPtr(ch_buffer*) { return nullptr; }
int bufferShareFd(ch_buffer*) { return -1; }
const char* lastError() { return tlsError.c_str(); }

const ch_backend kBackend = {
    /* .abi_version = */ CH_BACKEND_ABI_VERSION,
    /* .struct_size = */ sizeof(ch_backend),
    /* .name = */ "cuda",
    /* .init = */ init,
    /* .shutdown = */ shutdown,
    /* .device_count = */ deviceCount,
    /* .device_info = */ deviceInfo,
    /* .buffer_alloc = */ bufferAlloc,
    /* .buffer_free = */ bufferFree,
    /* .buffer_host_ptr = */ bufferHostPtr,
    /* .buffer_share_fd = */ bufferShareFd,
    /* .stream_create = */ streamCreate,
    /* .stream_destroy = */ streamDestroy,
    /* .copy_to_device = */ copyToDevice,
    /* .copy_to_host = */ copyToHost,
    /* .submit = */ submit,
    /* .synchronize = */ synchronize,
    /* .last_error = */ lastError,
};

}  // namespace

ch_status fail(ch_status status, const std::string& message) {
  tlsError = message;
  return status;
}

ch_status failCuda(cudaError_t err, const std::string& what) {
  return fail(err == cudaErrorMemoryAllocation ? CH_ERR_OUT_OF_MEMORY : CH_ERR_DEVICE,
              what + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

ch_status useDevice(std::int32_t device) {
  if (device == tlsDevice) return CH_OK;
  if (device < 0 || device >= deviceCount()) return fail(CH_ERR_INVALID, "no CUDA device " + std::to_string(device));
  if (cudaError_t e = cudaSetDevice(devices()[device].ordinal); e != cudaSuccess) {
    cudaGetLastError();
    return failCuda(e, "cudaSetDevice");
  }
  tlsDevice = device;
  return CH_OK;
}

bool gemmWithCublas() { return useCublas; }

int computeOf(std::int32_t device) {
  return device >= 0 && device < deviceCount() ? devices()[device].compute : 0;
}

}  // namespace caphost::cuda

extern "C" __attribute__((visibility("default"))) const ch_backend* caphost_backend_v1(uint32_t host_abi) {
  return host_abi == CH_BACKEND_ABI_VERSION ? &caphost::cuda::kBackend : nullptr;
}
