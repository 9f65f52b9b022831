// Last-axis row ops, one threadgroup of kGroup threads per row: softmax, layernorm, rmsnorm,
// l2 normalisation (op 0..3).

struct RowArgs {
  ulong cols;
  float eps;
  int op;
};

kernel void rows_f32(device const float* x [[buffer(0)]], device const float* gamma [[buffer(1)]],
                     device const float* beta [[buffer(2)]], device float* out [[buffer(3)]],
                     constant RowArgs& a [[buffer(4)]], uint row [[threadgroup_position_in_grid]],
                     uint tid [[thread_position_in_threadgroup]]) {
  threadgroup float scratch[kGroup];
  const ulong cols = a.cols;
  device const float* src = x + ulong(row) * cols;
  device float* dst = out + ulong(row) * cols;
  if (a.op == 0) {
    float mx = -INFINITY;
    for (ulong i = tid; i < cols; i += kGroup) mx = max(mx, src[i]);
    mx = groupReduce(mx, true, scratch, tid);
    float sum = 0.0f;
    for (ulong i = tid; i < cols; i += kGroup) sum += precise::exp(src[i] - mx);
    sum = groupReduce(sum, false, scratch, tid);
    const float inv = 1.0f / sum;
    for (ulong i = tid; i < cols; i += kGroup) dst[i] = precise::exp(src[i] - mx) * inv;
  } else if (a.op == 1) {
    float sum = 0.0f;
    for (ulong i = tid; i < cols; i += kGroup) sum += src[i];
    const float mean = groupReduce(sum, false, scratch, tid) / float(cols);
    float var = 0.0f;
    for (ulong i = tid; i < cols; i += kGroup) {
      const float d = src[i] - mean;
      var += d * d;
    }
    var = groupReduce(var, false, scratch, tid) / float(cols);
    const float rstd = 1.0f / precise::sqrt(var + a.eps);
    for (ulong i = tid; i < cols; i += kGroup) dst[i] = (src[i] - mean) * rstd * gamma[i] + beta[i];
  } else {
    float ss = 0.0f;
    for (ulong i = tid; i < cols; i += kGroup) ss += src[i] * src[i];
    ss = groupReduce(ss, false, scratch, tid);
    const float r = a.op == 2 ? 1.0f / precise::sqrt(ss / float(cols) + a.eps) : 1.0f / max(precise::sqrt(ss), a.eps);
    for (ulong i = tid; i < cols; i += kGroup) dst[i] = a.op == 2 ? src[i] * r * gamma[i] : src[i] * r;
  }
}
