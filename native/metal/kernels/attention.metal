// Scaled dot-product attention, one threadgroup of kGroup threads per (query row, head,
// batch): keys in chunks of kGroup, one thread per key's dot product, online softmax (running
// max and sum) so any key length fits. Causal: query i sees key j when j <= i + (Sk - Sq).
// A row with every key masked gives zeros. Threadgroup memory: d + dv + 2 * kGroup floats.

struct AttentionArgs {
  ulong sq, sk, heads, d, dv;
  float scale;
  int causal;
  int hasMask;
};

kernel void attention_f32(device const float* Q [[buffer(0)]], device const float* K [[buffer(1)]],
                          device const float* V [[buffer(2)]], device const int* mask [[buffer(3)]],
                          device float* out [[buffer(4)]], constant AttentionArgs& a [[buffer(5)]],
                          threadgroup float* smem [[threadgroup(0)]], uint3 group [[threadgroup_position_in_grid]],
                          uint tid [[thread_index_in_threadgroup]]) {
  threadgroup float* q = smem;
  threadgroup float* acc = q + a.d;
  threadgroup float* p = acc + a.dv;
  threadgroup float* scratch = p + kGroup;
  const ulong i = group.x, h = group.y, b = group.z;
  const ulong qkStride = a.heads * a.d, vStride = a.heads * a.dv;
  device const float* qrow = Q + (b * a.sq + i) * qkStride + h * a.d;
  for (ulong t = tid; t < a.d; t += kGroup) q[t] = qrow[t] * a.scale;
  for (ulong t = tid; t < a.dv; t += kGroup) acc[t] = 0.0f;
  // The last key this query may see (as a signed number: i + sk - sq may be negative).
  const long last = a.causal ? long(i) + long(a.sk) - long(a.sq) : long(a.sk) - 1;
  float runMax = -INFINITY, runSum = 0.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);

  for (ulong j0 = 0; j0 < a.sk; j0 += kGroup) {
    const ulong n = min(ulong(kGroup), a.sk - j0);
    float s = -INFINITY;
    if (tid < n) {
      const ulong j = j0 + tid;
      if (long(j) <= last && (!a.hasMask || mask[b * a.sk + j] != 0)) {
        device const float* krow = K + (b * a.sk + j) * qkStride + h * a.d;
        float dot = 0.0f;
        for (ulong t = 0; t < a.d; ++t) dot = fma(q[t], krow[t], dot);
        s = dot;
      }
    }
    const float chunkMax = groupReduce(s, true, scratch, tid);
    const float newMax = max(runMax, chunkMax);
    if (newMax == -INFINITY) continue;  // nothing visible yet (uniform across the group)
    const float e = s == -INFINITY ? 0.0f : precise::exp(s - newMax);
    p[tid] = e;
    const float chunkSum = groupReduce(e, false, scratch, tid);  // its barriers publish p
    const float correction = runMax == -INFINITY ? 0.0f : precise::exp(runMax - newMax);
    runSum = runSum * correction + chunkSum;
    runMax = newMax;
    for (ulong t = tid; t < a.dv; t += kGroup) {
      float v = acc[t] * correction;
      device const float* vcol = V + (b * a.sk + j0) * vStride + h * a.dv + t;
      for (ulong jj = 0; jj < n; ++jj) {
        const float w = p[jj];
        if (w != 0.0f) v = fma(w, vcol[jj * vStride], v);
      }
      acc[t] = v;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  device float* orow = out + (b * a.sq + i) * vStride + h * a.dv;
  const float inv = runSum > 0.0f ? 1.0f / runSum : 0.0f;
  for (ulong t = tid; t < a.dv; t += kGroup) orow[t] = acc[t] * inv;
}
