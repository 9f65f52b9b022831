/*
 * caphost's device backend interface: the one small C surface every backend (cpu, cuda,
 * metal) implements. It is C so that a backend can be built by another toolchain (nvcc,
 * clang for Objective-C++) into a library the controller loads on demand, and versioned so
 * that a library built against another revision is refused at load instead of misread.
 *
 * The host (native/device) validates every op's dtypes, shapes and byte ranges before a
 * backend sees it, so a backend may trust that operands lie inside their buffers and that
 * shapes agree. What a backend must still check is data-dependent (embedding ids out of
 * range) and everything about its device (out of memory, a lost device).
 *
 * Threading: the host calls a stream's functions from one thread at a time; different
 * streams may be used from different threads at once. buffer_alloc/buffer_free may be called
 * from any thread.
 */
#ifndef CAPHOST_BACKEND_H
#define CAPHOST_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change to the structs or function table below. */
#define CH_BACKEND_ABI_VERSION 1u

#define CH_MAX_RANK 6
#define CH_MAX_INPUTS 4

typedef enum ch_status {
  CH_OK = 0,
  CH_ERR_INVALID = 1,      /* bad argument the host could not see (e.g. an id out of range) */
  CH_ERR_OUT_OF_MEMORY = 2,
  CH_ERR_DEVICE = 3,       /* the device or its driver failed */
  CH_ERR_UNSUPPORTED = 4,  /* op/dtype combination this backend does not run */
  CH_ERR_UNAVAILABLE = 5   /* no driver, no device, driver too old */
} ch_status;

typedef enum ch_dtype {
  CH_F32 = 0,
  CH_F16 = 1,
  CH_BF16 = 2,
  CH_I32 = 3,
  CH_U8 = 4
} ch_dtype;

typedef struct ch_buffer ch_buffer; /* opaque, defined by each backend */
typedef struct ch_stream ch_stream; /* opaque, defined by each backend */

typedef struct ch_device_info {
  char name[128];
  uint64_t total_memory;    /* bytes */
  uint32_t host_visible;    /* 1: buffer_host_ptr gives memory the host can read/write in place */
  int32_t compute_major;    /* CUDA compute capability; 0 elsewhere */
  int32_t compute_minor;
  int32_t threads;          /* CPU: worker threads the kernels use; GPU: multiprocessors */
} ch_device_info;

/* A contiguous row-major tensor inside a buffer. */
typedef struct ch_tensor {
  ch_buffer* buffer;
  uint64_t offset;          /* bytes from the start of the buffer */
  int32_t dtype;            /* ch_dtype */
  int32_t rank;             /* 1..CH_MAX_RANK */
  int64_t shape[CH_MAX_RANK];
} ch_tensor;

/*
 * The op set. Shapes use [..] for leading (batch) dimensions; "last axis" ops treat a tensor
 * as rows x cols with cols = shape[rank-1]. Unless stated, inputs and output are f32.
 *
 * MATMUL     in0 a [.., M, K] (transA: [.., K, M]), in1 b [.., K, N] (transB: [.., N, K]) or
 *            rank 2 (shared by every batch), in2 optional bias [N] (f32). out [.., M, N].
 *            out = act(alpha * op(a) op(b) + bias); alpha = f0 (host sets 1 by default),
 *            act = i0 (ch_activation). a and b: f32, f16 or bf16 (same dtype); out f32 or the
 *            inputs' dtype; accumulation is f32.
 * ADD, MUL   in0 a [.., N], in1 b with a's shape or [N] (broadcast over rows). out like a.
 * SCALE      out = f0 * in0.
 * GELU       erf form, or tanh form with CH_FLAG_GELU_TANH. RELU, SILU: elementwise.
 * SOFTMAX    over the last axis.
 * LAYERNORM  in0 x [.., N], in1 gamma [N], in2 beta [N]; eps = f0.
 * RMSNORM    in0 x [.., N], in1 gamma [N]; eps = f0.
 * EMBEDDING  in0 table [V, H], in1 ids i32 [..]; out [.., H]. An id outside [0, V) fails the
 *            submission with CH_ERR_INVALID (GPU backends report it at synchronize).
 * ATTENTION  in0 q [B, Sq, Hn*D], in1 k [B, Sk, Hn*D], in2 v [B, Sk, Hn*Dv], in3 optional
 *            key mask i32 [B, Sk] (0 = masked out); i0 = Hn heads; f0 = scale (0: 1/sqrt(D));
 *            CH_FLAG_CAUSAL masks keys after the query's position. out [B, Sq, Hn*Dv].
 *            softmax(scale * q k^T + mask) v per batch and head; a fully masked row gives 0.
 * MEANPOOL   in0 x [B, S, H], in1 mask i32 [B, S]; out [B, H], the mean over unmasked
 *            positions (0 where all are masked).
 * L2NORM     over the last axis: x / max(||x||, eps), eps = f0.
 * CAST       in0 of any float dtype to out of any float dtype, same element count.
 * COPY       bytewise copy of in0 into out (same dtype and element count).
 */
typedef enum ch_op_kind {
  CH_OP_MATMUL = 0,
  CH_OP_ADD = 1,
  CH_OP_MUL = 2,
  CH_OP_SCALE = 3,
  CH_OP_GELU = 4,
  CH_OP_RELU = 5,
  CH_OP_SILU = 6,
  CH_OP_SOFTMAX = 7,
  CH_OP_LAYERNORM = 8,
  CH_OP_RMSNORM = 9,
  CH_OP_EMBEDDING = 10,
  CH_OP_ATTENTION = 11,
  CH_OP_MEANPOOL = 12,
  CH_OP_L2NORM = 13,
  CH_OP_CAST = 14,
  CH_OP_COPY = 15,
  CH_OP_COUNT = 16
} ch_op_kind;

typedef enum ch_activation {
  CH_ACT_NONE = 0,
  CH_ACT_RELU = 1,
  CH_ACT_GELU_TANH = 2,
  CH_ACT_GELU_ERF = 3
} ch_activation;

#define CH_FLAG_TRANS_A 1u
#define CH_FLAG_TRANS_B 2u
#define CH_FLAG_GELU_TANH 4u
#define CH_FLAG_CAUSAL 8u

typedef struct ch_op {
  int32_t kind;             /* ch_op_kind */
  uint32_t flags;           /* CH_FLAG_* */
  int32_t n_inputs;
  int32_t i0;               /* MATMUL: ch_activation; ATTENTION: heads */
  float f0;                 /* alpha / scale / eps, per op */
  float f1;                 /* reserved, 0 */
  ch_tensor inputs[CH_MAX_INPUTS];
  ch_tensor output;
} ch_op;

typedef struct ch_backend {
  uint32_t abi_version;     /* CH_BACKEND_ABI_VERSION the library was built with */
  uint32_t struct_size;     /* sizeof(ch_backend) the library was built with */
  const char* name;         /* "cpu" | "cuda" | "metal" */

  /* Probe and initialise. On failure returns CH_ERR_UNAVAILABLE (or another status) and
   * writes a reason a person can act on into why ("no CUDA driver", "driver 11.4 is older
   * than the 12.0 this build needs", ...). Called once, before anything else. */
  ch_status (*init)(char* why, size_t why_len);
  void (*shutdown)(void);

  int32_t (*device_count)(void);
  ch_status (*device_info)(int32_t device, ch_device_info* out);

  ch_status (*buffer_alloc)(int32_t device, uint64_t bytes, ch_buffer** out);
  void (*buffer_free)(ch_buffer* buffer);
  /* Host address of the buffer's bytes when the device is host_visible, else NULL. */
  void* (*buffer_host_ptr)(ch_buffer* buffer);
  /* A file descriptor whose MAP_SHARED mapping is the buffer's memory (CPU backend: a memfd),
   * or -1. The host dups it before passing it on; the backend keeps ownership. May be NULL. */
  int (*buffer_share_fd)(ch_buffer* buffer);

  ch_status (*stream_create)(int32_t device, ch_stream** out);
  void (*stream_destroy)(ch_stream* stream);
  /* Enqueue copies on the stream. The host keeps src/dst valid and untouched until the next
   * synchronize on this stream returns. */
  ch_status (*copy_to_device)(ch_stream* stream, ch_buffer* dst, uint64_t offset, const void* src,
                              uint64_t bytes);
  ch_status (*copy_to_host)(ch_stream* stream, void* dst, ch_buffer* src, uint64_t offset, uint64_t bytes);
  /* Enqueue ops to run in order after everything already on the stream. */
  ch_status (*submit)(ch_stream* stream, const ch_op* ops, uint32_t count);
  /* Block until all enqueued work is done; returns the first failure since the last call. */
  ch_status (*synchronize)(ch_stream* stream);

  /* Message of the last failure on the calling thread ("" when none). */
  const char* (*last_error)(void);
} ch_backend;

/* The one symbol a backend library exports. Returns NULL if it cannot serve host_abi. */
typedef const ch_backend* (*ch_backend_entry_fn)(uint32_t host_abi);
#define CH_BACKEND_ENTRY_SYMBOL "caphost_backend_v1"

#ifdef __cplusplus
}
#endif

#endif /* CAPHOST_BACKEND_H */
