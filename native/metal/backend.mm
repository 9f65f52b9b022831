// The Metal backend's entry point and device layer: init() finds the Metal devices, compiles
// the kernels from source (kernels/*.metal, embedded at build time) and makes one compute
// pipeline per kernel; a device whose compile fails is reported in words.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "allocator.h"
#include "state.h"
#include "stream_ops.h"

namespace caphost::metal {

namespace {

const char kSource[] =
#include "metal_source.inc"
    ;

NSArray<NSString*>* kernelNames() {
  return @[ @"unary_f32", @"binary_f32", @"cast_any", @"copy_bytes", @"rows_f32", @"embedding_f32", @"meanpool_f32",
            @"gemm_any", @"attention_f32" ];
}

thread_local std::string tlsError;

ch_status unavailable(char* why, std::size_t len, const std::string& reason) {
  if (why && len) std::snprintf(why, len, "%s", reason.c_str());
  return fail(CH_ERR_UNAVAILABLE, reason);
}

// Compiles the kernels for one device; empty string on success, else the reason.
std::string compile(Device& d) {
  @autoreleasepool {
    MTLCompileOptions* options = [MTLCompileOptions new];
    options.fastMathEnabled = NO;  // inf/NaN semantics and precise exp/tanh, as the CPU backend has
    NSError* error = nil;
    id<MTLLibrary> library = [d.device newLibraryWithSource:[NSString stringWithUTF8String:kSource]
                                                    options:options
                                                      error:&error];
    if (!library)
      return std::string("the Metal kernels did not compile: ") +
             (error ? error.localizedDescription.UTF8String : "no reason given");
    NSMutableDictionary<NSString*, id<MTLComputePipelineState>>* pipelines = [NSMutableDictionary dictionary];
    for (NSString* name in kernelNames()) {
      id<MTLFunction> fn = [library newFunctionWithName:name];
      if (!fn) return std::string("the Metal library has no kernel ") + name.UTF8String;
      id<MTLComputePipelineState> state = [d.device newComputePipelineStateWithFunction:fn error:&error];
      if (!state)
        return std::string("no pipeline for ") + name.UTF8String + ": " +
               (error ? error.localizedDescription.UTF8String : "no reason given");
      if (state.maxTotalThreadsPerThreadgroup < 256)
        return std::string("kernel ") + name.UTF8String + " allows only " +
               std::to_string(state.maxTotalThreadsPerThreadgroup) + " threads per threadgroup; it needs 256";
      pipelines[name] = state;
    }
    d.pipelines = pipelines;
  }
  return "";
}

ch_status init(char* why, std::size_t len) {
  devices().clear();
  std::string skipped;
  @autoreleasepool {
    NSMutableArray<id<MTLDevice>>* found = [NSMutableArray array];
    id<MTLDevice> preferred = MTLCreateSystemDefaultDevice();
    if (preferred) [found addObject:preferred];
#if TARGET_OS_OSX
    for (id<MTLDevice> d in MTLCopyAllDevices())
      if (!preferred || d.registryID != preferred.registryID) [found addObject:d];
#endif
    if (found.count == 0) return unavailable(why, len, "no Metal device (MTLCreateSystemDefaultDevice returned nil)");
    for (id<MTLDevice> dev in found) {
      Device d{};
      d.device = dev;
      if (std::string reason = compile(d); !reason.empty()) {
        skipped += (skipped.empty() ? "" : "; ") + std::string(dev.name.UTF8String) + ": " + reason;
        continue;
      }
      const char* name = dev.name.UTF8String;
      std::memcpy(d.info.name, name, std::min(sizeof d.info.name - 1, std::strlen(name)));
      d.info.total_memory = dev.recommendedMaxWorkingSetSize;
      d.info.host_visible = dev.hasUnifiedMemory ? 1 : 0;
      d.info.compute_major = 0;
      d.info.compute_minor = 0;
      d.info.threads = 0;
      devices().push_back(d);
    }
  }
  if (devices().empty()) return unavailable(why, len, "no usable Metal device: " + skipped);
  Allocator::configure(static_cast<int>(devices().size()));
  if (why && len) why[0] = '\0';
  return CH_OK;
}

void shutdown() {
  Allocator::releaseAll();
  devices().clear();
}

std::int32_t deviceCount() { return static_cast<std::int32_t>(devices().size()); }

ch_status deviceInfo(std::int32_t device, ch_device_info* out) {
  if (device < 0 || device >= deviceCount() || !out)
    return fail(CH_ERR_INVALID, "device_info: no Metal device " + std::to_string(device));
  *out = devices()[device].info;
  return CH_OK;
}

ch_status bufferAlloc(std::int32_t device, std::uint64_t bytes, ch_buffer** out) {
  if (!out) return fail(CH_ERR_INVALID, "buffer_alloc: out is null");
  return Allocator::alloc(device, bytes, out);
}
void bufferFree(ch_buffer* b) { Allocator::release(b); }
// Shared storage is host memory on Apple silicon: the host may read and write it in place
// (between synchronizes of the streams that use it).
void* bufferHostPtr(ch_buffer* b) {
  return b && devices()[b->device].info.host_visible ? b->buffer.contents : nullptr;
}
int bufferShareFd(ch_buffer*) { return -1; }
const char* lastError() { return tlsError.c_str(); }

const ch_backend kBackend = {
    /* .abi_version = */ CH_BACKEND_ABI_VERSION,
    /* .struct_size = */ sizeof(ch_backend),
    /* .name = */ "metal",
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

std::vector<Device>& devices() {
  static std::vector<Device> d;
  return d;
}

id<MTLComputePipelineState> pipeline(std::int32_t device, NSString* name) { return devices()[device].pipelines[name]; }

ch_status fail(ch_status status, const std::string& message) {
  tlsError = message;
  return status;
}

}  // namespace caphost::metal

extern "C" __attribute__((visibility("default"))) const ch_backend* caphost_backend_v1(uint32_t host_abi) {
  return host_abi == CH_BACKEND_ABI_VERSION ? &caphost::metal::kBackend : nullptr;
}
