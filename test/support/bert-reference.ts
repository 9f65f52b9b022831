/**
 * A plain float64 BERT encoder with mean pooling and l2 normalisation, written from the model's
 * definition (Hugging Face BertModel in inference, sentence-transformers pooling) and nothing
 * else: the reference both caphost's runner and the ONNX graph are checked against.
 */
export interface ReferenceConfig {
  readonly hidden_size: number;
  readonly num_attention_heads: number;
  readonly num_hidden_layers: number;
  readonly intermediate_size: number;
  readonly layer_norm_eps: number;
}

export type Weights = ReadonlyMap<string, { readonly data: Float32Array }>;

function linear(x: Float64Array, rows: number, inp: number, w: Float32Array, b: Float32Array, out: number): Float64Array {
  const y = new Float64Array(rows * out);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < out; o++) {
      let acc = b[o]!;
      for (let i = 0; i < inp; i++) acc += x[r * inp + i]! * w[o * inp + i]!;
      y[r * out + o] = acc;
    }
  }
  return y;
}

function layerNorm(x: Float64Array, rows: number, cols: number, g: Float32Array, b: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let c = 0; c < cols; c++) mean += x[r * cols + c]!;
    mean /= cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += (x[r * cols + c]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / cols + eps);
    for (let c = 0; c < cols; c++) y[r * cols + c] = (x[r * cols + c]! - mean) * inv * g[c]! + b[c]!;
  }
  return y;
}

/** erf by Abramowitz-Stegun 7.1.26 is too coarse here; this series/continued-fraction pair is good to ~1e-15. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for the tail.
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 300; n++) {
    const a = n / 2;
    d = ax + a * d;
    d = d === 0 ? 1e-300 : 1 / d;
    c = ax + a / c;
    if (c === 0) c = 1e-300;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** Returns the l2-normalised mean-pooled embeddings [batch, hidden] and the last hidden state. */
export function bertReference(
  weights: Weights,
  config: ReferenceConfig,
  batch: number,
  seq: number,
  ids: ArrayLike<number>,
  mask: ArrayLike<number>,
  types: ArrayLike<number>,
): { embeddings: Float64Array; hidden: Float64Array } {
  const H = config.hidden_size;
  const heads = config.num_attention_heads;
  const D = H / heads;
  const I = config.intermediate_size;
  const eps = config.layer_norm_eps;
  const W = (name: string): Float32Array => {
    const t = weights.get(name);
    if (t === undefined) throw new Error(`reference: no tensor ${name}`);
    return t.data;
  };
  const rows = batch * seq;
  let x: Float64Array = new Float64Array(rows * H);
  const word = W('embeddings.word_embeddings.weight');
  const pos = W('embeddings.position_embeddings.weight');
  const type = W('embeddings.token_type_embeddings.weight');
  for (let r = 0; r < rows; r++) {
    const s = r % seq;
    for (let c = 0; c < H; c++) x[r * H + c] = word[ids[r]! * H + c]! + pos[s * H + c]! + type[types[r]! * H + c]!;
  }
  x = layerNorm(x, rows, H, W('embeddings.LayerNorm.weight'), W('embeddings.LayerNorm.bias'), eps);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `encoder.layer.${l}.`;
    const q = linear(x, rows, H, W(`${p}attention.self.query.weight`), W(`${p}attention.self.query.bias`), H);
    const k = linear(x, rows, H, W(`${p}attention.self.key.weight`), W(`${p}attention.self.key.bias`), H);
    const v = linear(x, rows, H, W(`${p}attention.self.value.weight`), W(`${p}attention.self.value.bias`), H);
    const context = new Float64Array(rows * H);
    const scores = new Float64Array(seq);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < seq; i++) {
          let max = -Infinity;
          for (let j = 0; j < seq; j++) {
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[(b * seq + i) * H + h * D + d]! * k[(b * seq + j) * H + h * D + d]!;
            scores[j] = dot / Math.sqrt(D) + (mask[b * seq + j] === 0 ? -10000 : 0);
            if (scores[j]! > max) max = scores[j]!;
          }
          let sum = 0;
          for (let j = 0; j < seq; j++) {
            scores[j] = Math.exp(scores[j]! - max);
            sum += scores[j]!;
          }
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j < seq; j++) acc += (scores[j]! / sum) * v[(b * seq + j) * H + h * D + d]!;
            context[(b * seq + i) * H + h * D + d] = acc;
          }
        }
      }
    }
    const attnOut = linear(context, rows, H, W(`${p}attention.output.dense.weight`), W(`${p}attention.output.dense.bias`), H);
    for (let i = 0; i < attnOut.length; i++) attnOut[i]! += x[i]!;
    const attended = layerNorm(attnOut, rows, H, W(`${p}attention.output.LayerNorm.weight`), W(`${p}attention.output.LayerNorm.bias`), eps);
    const inter = linear(attended, rows, H, W(`${p}intermediate.dense.weight`), W(`${p}intermediate.dense.bias`), I);
    for (let i = 0; i < inter.length; i++) inter[i] = 0.5 * inter[i]! * (1 + erf(inter[i]! / Math.SQRT2));
    const out = linear(inter, rows, I, W(`${p}output.dense.weight`), W(`${p}output.dense.bias`), H);
    for (let i = 0; i < out.length; i++) out[i]! += attended[i]!;
    x = layerNorm(out, rows, H, W(`${p}output.LayerNorm.weight`), W(`${p}output.LayerNorm.bias`), eps);
  }
  const embeddings = new Float64Array(batch * H);
  for (let b = 0; b < batch; b++) {
    let count = 0;
    for (let s = 0; s < seq; s++) {
      if (mask[b * seq + s] === 0) continue;
      count++;
      for (let c = 0; c < H; c++) embeddings[b * H + c]! += x[(b * seq + s) * H + c]!;
    }
    let norm = 0;
    for (let c = 0; c < H; c++) {
      embeddings[b * H + c]! /= Math.max(count, 1e-9);
      norm += embeddings[b * H + c]! ** 2;
    }
    norm = Math.max(Math.sqrt(norm), 1e-12);
    for (let c = 0; c < H; c++) embeddings[b * H + c]! /= norm;
  }
  return { embeddings, hidden: x };
}
