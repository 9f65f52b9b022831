#include "backend.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "backend_exec.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

struct ch_buffer {
  void* data;
  std::uint64_t bytes;
  std::uint64_t mapped;  // bytes of the mapping (memfd), 0 for heap memory
  int fd;                // memfd, or a host descriptor when wrapped; -1 when none
  bool ownsFd;
  void (*release)(void*);
  void* context;
};

struct ch_stream {
  ch_status pending = CH_OK;  // first failure since the last synchronize
  std::string message;
};

namespace caphost::cpu {
namespace {

thread_local std::string lastError;
int threadsSetting = 0;

ch_status failWith(ch_status s, const std::string& message) {
  lastError = message;
  return s;
}

ch_status init(char* why, std::size_t whyLen) {
  if (why != nullptr && whyLen > 0) why[0] = '\0';
  return CH_OK;
}

void shutdown() {}

int32_t deviceCount() { return 1; }

ch_status deviceInfo(int32_t device, ch_device_info* out) {
  if (device != 0) return failWith(CH_ERR_INVALID, "the CPU backend has one device, 0");
  std::memset(out, 0, sizeof(*out));
  std::snprintf(out->name, sizeof(out->name), "cpu (%s kernels)", execIsa());
#if defined(__linux__)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) out->total_memory = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
#endif
  out->host_visible = 1;
  out->threads = cpuThreads();
  return CH_OK;
}

ch_status bufferAlloc(int32_t device, std::uint64_t bytes, ch_buffer** out) {
  if (device != 0) return failWith(CH_ERR_INVALID, "the CPU backend has one device, 0");
  auto* b = new (std::nothrow) ch_buffer{nullptr, bytes, 0, -1, false, nullptr, nullptr};
  if (b == nullptr) return failWith(CH_ERR_OUT_OF_MEMORY, "out of host memory");
#if defined(__linux__)
  // A memfd per buffer: granting a buffer to a process worker passes exactly this memory.
  const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  const std::uint64_t mapped = ((bytes == 0 ? 1 : bytes) + page - 1) / page * page;
  const int fd = memfd_create("caphost-buffer", MFD_CLOEXEC);
  if (fd >= 0) {
    if (ftruncate(fd, static_cast<off_t>(mapped)) == 0) {
      void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) {
        b->data = p;
        b->mapped = mapped;
        b->fd = fd;
        b->ownsFd = true;
        *out = b;
        return CH_OK;
      }
    }
    const int e = errno;
    close(fd);
    if (e == ENOMEM || e == ENOSPC) {
      delete b;
      return failWith(CH_ERR_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes: " + std::strerror(e));
    }
  }
#endif
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes == 0 ? 64 : static_cast<std::size_t>((bytes + 63) / 64 * 64)) != 0) {
    delete b;
    return failWith(CH_ERR_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  }
  b->data = p;
  *out = b;
  return CH_OK;
}

void bufferFree(ch_buffer* b) {
  if (b == nullptr) return;
  if (b->release != nullptr) {
    dropPackedWeights(b->data, b->bytes);
    b->release(b->context);
  } else if (b->mapped != 0) {
#if defined(__linux__)
    munmap(b->data, b->mapped);
#endif
  } else {
    std::free(b->data);
  }
#if defined(__linux__)
  if (b->ownsFd) close(b->fd);
#endif
  delete b;
}

void* bufferHostPtr(ch_buffer* b) { return b->data; }
int bufferShareFd(ch_buffer* b) { return b->fd; }

ch_status streamCreate(int32_t device, ch_stream** out) {
  if (device != 0) return failWith(CH_ERR_INVALID, "the CPU backend has one device, 0");
  *out = new (std::nothrow) ch_stream();
  return *out == nullptr ? failWith(CH_ERR_OUT_OF_MEMORY, "out of host memory") : CH_OK;
}

void streamDestroy(ch_stream* s) { delete s; }

// The CPU runs work as it is enqueued; a failure is kept for the next synchronize, as a GPU
// stream would report it, and later work on the stream is skipped until then.
ch_status record(ch_stream* s, ch_status st, const std::string& message) {
  if (st != CH_OK && s->pending == CH_OK) {
    s->pending = st;
    s->message = message;
  }
  return CH_OK;
}

ch_status copyToDevice(ch_stream* s, ch_buffer* dst, std::uint64_t offset, const void* src, std::uint64_t bytes) {
  if (s->pending == CH_OK) std::memcpy(static_cast<char*>(dst->data) + offset, src, bytes);
  return CH_OK;
}

ch_status copyToHost(ch_stream* s, void* dst, ch_buffer* src, std::uint64_t offset, std::uint64_t bytes) {
  if (s->pending == CH_OK) std::memcpy(dst, static_cast<const char*>(src->data) + offset, bytes);
  return CH_OK;
}

ch_status submit(ch_stream* s, const ch_op* ops, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count && s->pending == CH_OK; ++i) {
    try {
      executeOp(ops[i], cpuThreads());
    } catch (const ExecError& e) {
      record(s, e.status, "op " + std::to_string(i) + ": " + e.what());
    } catch (const std::bad_alloc&) {
      record(s, CH_ERR_OUT_OF_MEMORY, "op " + std::to_string(i) + ": out of host memory");
    } catch (const std::exception& e) {
      record(s, CH_ERR_DEVICE, "op " + std::to_string(i) + ": " + e.what());
    }
  }
  return CH_OK;
}

ch_status synchronize(ch_stream* s) {
  const ch_status st = s->pending;
  if (st != CH_OK) lastError = s->message;
  s->pending = CH_OK;
  s->message.clear();
  return st;
}

const char* lastErrorMessage() { return lastError.c_str(); }

const ch_backend kBackend = {
    CH_BACKEND_ABI_VERSION, sizeof(ch_backend), "cpu", init, shutdown, deviceCount, deviceInfo,
    bufferAlloc, bufferFree, bufferHostPtr, bufferShareFd, streamCreate, streamDestroy,
    copyToDevice, copyToHost, submit, synchronize, lastErrorMessage,
};

}  // namespace

const ch_backend* cpuBackend() { return &kBackend; }

void setCpuThreads(int threads) { threadsSetting = threads; }

int cpuThreads() {
  if (threadsSetting > 0) return threadsSetting;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ch_buffer* wrapHostMemory(void* data, std::uint64_t bytes, int shareFd, void (*release)(void*), void* context) {
  return new ch_buffer{data, bytes, 0, shareFd, false, release, context};
}

}  // namespace caphost::cpu

namespace caphost::cpu {
void* tensorData(const ch_tensor& t) { return static_cast<char*>(t.buffer->data) + t.offset; }
bool isImmutable(const ch_tensor& t) { return t.buffer->release != nullptr; }
}  // namespace caphost::cpu
