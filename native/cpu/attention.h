// Scaled dot-product attention over [B, S, heads*D] activations (the layout a fused
// projection produces), one (batch, head) pair per task: two small GEMMs that read the
// head's columns in place through the leading dimension, with the mask and a softmax between.
#pragma once

#include <cstdint>

#include "ops.h"

namespace caphost::cpu {

struct AttentionShape {
  std::int64_t batch, seqQ, seqK, heads, headDim, valueDim;
};

// keyMask: nullptr or [batch, seqK], 0 = masked out. causal: query i sees keys up to
// i + (seqK - seqQ). A query row with no visible key gives zeros.
void attention(const ops::OpsTable& k, const AttentionShape& s, const float* q, const float* key, const float* v,
               const std::int32_t* keyMask, bool causal, float scale, float* out, int threads);

// The AVX-512 kernel (attention_x86.cc): whether it can run this shape on this CPU, and one
// (batch, head) task of it, task = b * heads + h.
bool attentionAvx512Supported(const AttentionShape& s);
void attentionHeadAvx512(const AttentionShape& s, const float* q, const float* key, const float* v,
                         const std::int32_t* keyMask, bool causal, float scale, float* out, std::int64_t task);

}  // namespace caphost::cpu
