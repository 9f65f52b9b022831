// Tiled GEMM for f32, f16 and bf16 inputs with f32 accumulation: 32x32 tiles of C per
// threadgroup of 16x16 threads (2x2 outputs each), 16-deep K slices in threadgroup memory,
// fused alpha, bias and activation, output in f32 or the input dtype. Transposes only change
// how tiles are read; threadgroup memory holds A as [k][m] and B as [k][n].

struct GemmArgs {
  ulong M, N, K;
  ulong strideA, strideB, strideC;  // elements between batches (strideB 0: b shared)
  float alpha;
  int act;
  int inType;
  int outType;
  int transA;
  int transB;
  int hasBias;
};

kernel void gemm_any(device const uchar* A [[buffer(0)]], device const uchar* B [[buffer(1)]],
                     device const float* bias [[buffer(2)]], device uchar* C [[buffer(3)]],
                     constant GemmArgs& g [[buffer(4)]], uint3 group [[threadgroup_position_in_grid]],
                     uint tid [[thread_index_in_threadgroup]]) {
  threadgroup float sA[16][33];
  threadgroup float sB[16][33];
  const uint tx = tid % 16, ty = tid / 16;
  const ulong m0 = ulong(group.y) * 32, n0 = ulong(group.x) * 32, batch = group.z;
  const ulong aBase = batch * g.strideA, bBase = batch * g.strideB;
  float acc00 = 0.0f, acc01 = 0.0f, acc10 = 0.0f, acc11 = 0.0f;

  for (ulong k0 = 0; k0 < g.K; k0 += 16) {
    for (uint e = 0; e < 2; ++e) {
      const uint idx = tid + e * 256;
      uint m, k;
      if (g.transA) { k = idx / 32; m = idx % 32; }
      else { m = idx / 16; k = idx % 16; }
      const ulong gm = m0 + m, gk = k0 + k;
      float v = 0.0f;
      if (gm < g.M && gk < g.K) v = loadAs(A, aBase + (g.transA ? gk * g.M + gm : gm * g.K + gk), g.inType);
      sA[k][m] = v;
    }
    for (uint e = 0; e < 2; ++e) {
      const uint idx = tid + e * 256;
      uint n, k;
      if (g.transB) { n = idx / 16; k = idx % 16; }
      else { k = idx / 32; n = idx % 32; }
      const ulong gn = n0 + n, gk = k0 + k;
      float v = 0.0f;
      if (gn < g.N && gk < g.K) v = loadAs(B, bBase + (g.transB ? gn * g.K + gk : gk * g.N + gn), g.inType);
      sB[k][n] = v;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 0; k < 16; ++k) {
      const float a0 = sA[k][ty], a1 = sA[k][ty + 16], b0 = sB[k][tx], b1 = sB[k][tx + 16];
      acc00 = fma(a0, b0, acc00);
      acc01 = fma(a0, b1, acc01);
      acc10 = fma(a1, b0, acc10);
      acc11 = fma(a1, b1, acc11);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }

  const float accs[4] = {acc00, acc01, acc10, acc11};
  for (uint q = 0; q < 4; ++q) {
    const ulong m = m0 + ty + 16 * (q / 2), n = n0 + tx + 16 * (q % 2);
    if (m >= g.M || n >= g.N) continue;
    float v = g.alpha * accs[q];
    if (g.hasBias) v += bias[n];
    storeAs(C, batch * g.strideC + m * g.N + n, g.outType, activate(v, g.act));
  }
}
