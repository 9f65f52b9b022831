#include "gemm_cublas.h"

#include <cublas_v2.h>
#include <dlfcn.h>

#include <climits>
#include <mutex>

namespace caphost::cuda::cublas {

namespace {

using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
using DestroyFn = cublasStatus_t (*)(cublasHandle_t);
using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
using GemmFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                  const void*, cudaDataType, int, long long, const void*, cudaDataType, int, long long,
                                  const void*, void*, cudaDataType, int, long long, int, cublasComputeType_t,
                                  cublasGemmAlgo_t);

struct Api {
  CreateFn create = nullptr;
  DestroyFn destroy = nullptr;
  SetStreamFn setStream = nullptr;
  GemmFn gemm = nullptr;
  std::string why;
};

const Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      a.why = name + " could not be loaded: " + dlerror();
      return;
    }
    a.create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
    a.destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
    a.setStream = reinterpret_cast<SetStreamFn>(dlsym(lib, "cublasSetStream_v2"));
    a.gemm = reinterpret_cast<GemmFn>(dlsym(lib, "cublasGemmStridedBatchedEx"));
    if (!a.create || !a.destroy || !a.setStream || !a.gemm) a.why = name + " lacks the functions this path uses";
  });
  return a;
}

cudaDataType typeOf(DType d) { return d == DType::F32 ? CUDA_R_32F : d == DType::F16 ? CUDA_R_16F : CUDA_R_16BF; }

}  // namespace

std::string load() { return api().why; }

ch_status gemm(ch_stream* st, const GemmArgs& g) {
  const Api& a = api();
  if (!a.why.empty()) return fail(CH_ERR_UNSUPPORTED, "cuBLAS: " + a.why);
  if (g.m == 0 || g.n == 0 || g.batch == 0) return CH_OK;
  if (g.m > INT_MAX || g.n > INT_MAX || g.k > INT_MAX || g.batch > INT_MAX)
    return fail(CH_ERR_UNSUPPORTED, "matmul: dimensions beyond cuBLAS's int range");
  if (!st->cublasHandle) {
    cublasHandle_t h = nullptr;
    if (a.create(&h) != CUBLAS_STATUS_SUCCESS) return fail(CH_ERR_DEVICE, "cuBLAS: cublasCreate failed");
    if (a.setStream(h, st->stream) != CUBLAS_STATUS_SUCCESS) {
      a.destroy(h);
      return fail(CH_ERR_DEVICE, "cuBLAS: cublasSetStream failed");
    }
    st->cublasHandle = h;
  }
  // Row-major C[M,N] = A B is column-major C^T[N,M] = B^T A^T: B's memory comes first.
  const float alpha = g.alpha, beta = 0.0f;
  const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  const cublasStatus_t s = a.gemm(
      static_cast<cublasHandle_t>(st->cublasHandle), g.transB ? CUBLAS_OP_T : CUBLAS_OP_N,
      g.transA ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, g.b, typeOf(g.in), g.transB ? k : n, g.strideB, g.a,
      typeOf(g.in), g.transA ? m : k, g.strideA, &beta, g.c, typeOf(g.out), n, g.strideC, static_cast<int>(g.batch),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    return fail(CH_ERR_DEVICE, "cuBLAS: cublasGemmStridedBatchedEx failed with status " + std::to_string(s));
  if (g.bias || g.activation != CH_ACT_NONE) {
    if (cudaError_t e = launchEpilogue(st->stream, g.c, g.out, g.batch * g.m, g.n, g.bias, g.activation);
        e != cudaSuccess)
      return failCuda(e, "matmul epilogue");
  }
  return CH_OK;
}

void release(ch_stream* st) {
  if (st->cublasHandle && api().destroy) api().destroy(static_cast<cublasHandle_t>(st->cublasHandle));
  st->cublasHandle = nullptr;
}

}  // namespace caphost::cuda::cublas
