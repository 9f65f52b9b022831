// Elementwise f32 ops, casts between float dtypes, and the bytewise copy op; grid-stride
// loops so any element count fits the grid the host dispatches.

struct UnaryArgs {
  ulong n;
  float alpha;
  int op;  // 0 scale, 1 relu, 2 silu, 3 gelu erf, 4 gelu tanh
};

kernel void unary_f32(device const float* x [[buffer(0)]], device float* out [[buffer(1)]],
                      constant UnaryArgs& a [[buffer(2)]], uint gid [[thread_position_in_grid]],
                      uint grid [[threads_per_grid]]) {
  for (ulong i = gid; i < a.n; i += grid) {
    const float v = x[i];
    float r;
    switch (a.op) {
      case 0: r = v * a.alpha; break;
      case 1: r = v > 0.0f ? v : 0.0f; break;
      case 2: r = silu(v); break;
      case 3: r = geluErf(v); break;
      default: r = geluTanh(v); break;
    }
    out[i] = r;
  }
}

struct BinaryArgs {
  ulong n;
  ulong cols;      // b's length when broadcast over rows
  int broadcast;
  int op;          // 0 add, 1 mul
};

kernel void binary_f32(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                       device float* out [[buffer(2)]], constant BinaryArgs& p [[buffer(3)]],
                       uint gid [[thread_position_in_grid]], uint grid [[threads_per_grid]]) {
  for (ulong i = gid; i < p.n; i += grid) {
    const float y = b[p.broadcast ? i % p.cols : i];
    out[i] = p.op == 0 ? a[i] + y : a[i] * y;
  }
}

struct CastArgs {
  ulong n;
  int from;
  int to;
};

kernel void cast_any(device const uchar* x [[buffer(0)]], device uchar* out [[buffer(1)]],
                     constant CastArgs& a [[buffer(2)]], uint gid [[thread_position_in_grid]],
                     uint grid [[threads_per_grid]]) {
  for (ulong i = gid; i < a.n; i += grid) storeAs(out, i, a.to, loadAs(x, i, a.from));
}

struct CopyArgs {
  ulong bytes;
};

kernel void copy_bytes(device const uchar* x [[buffer(0)]], device uchar* out [[buffer(1)]],
                       constant CopyArgs& a [[buffer(2)]], uint gid [[thread_position_in_grid]],
                       uint grid [[threads_per_grid]]) {
  for (ulong i = gid; i < a.bytes; i += grid) out[i] = x[i];
}
