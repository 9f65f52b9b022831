// The optional cuBLAS GEMM path, compiled in only when cublas_v2.h is found at build time and
// chosen at run time with CAPHOST_CUDA_GEMM=cublas. libcublas is opened with dlopen on first
// use, so a build with this path still loads where cuBLAS is absent; asking for it there
// fails init() with the reason. Bias and activation run as a separate epilogue kernel.
#pragma once

#include <string>

#include "kernels.h"
#include "state.h"

namespace caphost::cuda::cublas {

// "" when cuBLAS can be used (it is loaded then), else why not.
std::string load();
// C = act(alpha * op(A) op(B) + bias); shapes must fit cuBLAS's int dimensions.
ch_status gemm(ch_stream* stream, const GemmArgs& g);
// Frees the stream's cuBLAS handle, if it made one.
void release(ch_stream* stream);

}  // namespace caphost::cuda::cublas
