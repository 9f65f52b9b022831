// Embedding gather (an id outside [0, vocab) zero-fills its row and is recorded in the
// stream's flag words: [0] counts bad ids, [1] = the first one's value, [2] = vocab) and
// masked mean pooling.

struct EmbeddingArgs {
  ulong hidden;
  int vocab;
};

kernel void embedding_f32(device const float* table [[buffer(0)]], device const int* ids [[buffer(1)]],
                          device float* out [[buffer(2)]], device atomic_int* flags [[buffer(3)]],
                          constant EmbeddingArgs& a [[buffer(4)]], uint row [[threadgroup_position_in_grid]],
                          uint tid [[thread_position_in_threadgroup]], uint tn [[threads_per_threadgroup]]) {
  const int id = ids[row];
  device float* dst = out + ulong(row) * a.hidden;
  if (id < 0 || id >= a.vocab) {
    if (tid == 0 && atomic_fetch_add_explicit(&flags[0], 1, memory_order_relaxed) == 0) {
      atomic_store_explicit(&flags[1], id, memory_order_relaxed);
      atomic_store_explicit(&flags[2], a.vocab, memory_order_relaxed);
    }
    for (ulong i = tid; i < a.hidden; i += tn) dst[i] = 0.0f;
    return;
  }
  device const float* src = table + ulong(id) * a.hidden;
  for (ulong i = tid; i < a.hidden; i += tn) dst[i] = src[i];
}

struct MeanPoolArgs {
  ulong seq;
  ulong hidden;
};

// grid: (hidden, batch) threads.
kernel void meanpool_f32(device const float* x [[buffer(0)]], device const int* mask [[buffer(1)]],
                         device float* out [[buffer(2)]], constant MeanPoolArgs& a [[buffer(3)]],
                         uint2 gid [[thread_position_in_grid]]) {
  const ulong h = gid.x, b = gid.y;
  if (h >= a.hidden) return;
  float sum = 0.0f;
  uint count = 0;
  for (ulong t = 0; t < a.seq; ++t) {
    if (mask[b * a.seq + t] != 0) {
      sum += x[(b * a.seq + t) * a.hidden + h];
      ++count;
    }
  }
  out[b * a.hidden + h] = count ? sum / float(count) : 0.0f;
}
