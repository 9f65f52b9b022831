/**
 * Writes a small BERT-style sentence encoder with random weights, in the files a user of a
 * Hugging Face model has (config.json, vocab.txt, model.safetensors with the usual tensor names),
 * and the same network as an ONNX graph (model.onnx: encoder, mean pooling over the attention
 * mask, l2 normalisation), so that caphost's runner and onnxruntime can be compared on it.
 *
 *   npm run build && node dist/scripts/random-bert.js --out DIR [--layers 2] [--hidden 64]
 *     [--heads 4] [--intermediate 256] [--vocab 1000] [--positions 128] [--seed 1]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSafetensors } from '../src/device/safetensors-file.js';
import { OnnxGraph, OnnxType } from './onnx-graph.js';
import { mulberry32 } from '../test/support/prng.js';

export interface BertShape {
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly intermediate: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly typeVocabSize?: number;
  readonly layerNormEps?: number;
}

export interface RandomBert {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  readonly vocab: readonly string[];
  readonly files: { readonly config: string; readonly vocab: string; readonly safetensors: string; readonly onnx: string };
}

function normal(random: () => number, n: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const theta = 2 * Math.PI * random();
    out[i] = mean + std * r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(theta);
  }
  return out;
}

/** A vocabulary in BERT's layout: specials, punctuation, characters and their ## forms, then made-up words. */
export function makeVocab(size: number, random: () => number): string[] {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...'.,!?;:\'"-()'.split('')];
  const letters = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');
  vocab.push(...letters, ...letters.map((c) => `##${c}`));
  const seen = new Set(vocab);
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'st', 'tr', 'pl', 'gr', 'ch', 'sh'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ea', 'ou', 'ai'];
  const codas = ['', '', 'n', 'r', 's', 't', 'l', 'm', 'ng', 'rd'];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  while (vocab.length < size) {
    let word = '';
    const syllables = 1 + Math.floor(random() * 3);
    for (let s = 0; s < syllables; s++) word += pick(onsets) + pick(vowels) + pick(codas);
    // Some entries are continuation pieces, so that WordPiece splits real work.
    const token = random() < 0.25 ? `##${word}` : word;
    if (seen.has(token)) continue;
    seen.add(token);
    vocab.push(token);
  }
  if (vocab.length > size) throw new RangeError(`a vocabulary needs at least ${vocab.length} entries, got ${size}`);
  return vocab;
}

/** Row-major [rows, cols] → [cols, rows]: a Linear's [out, in] weight as MatMul's [in, out]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

export async function makeRandomBert(dir: string, shape: BertShape, seed = 1): Promise<RandomBert> {
  const { layers, hidden: H, heads, intermediate: I, vocabSize: V, maxPositions: P } = shape;
  const T = shape.typeVocabSize ?? 2;
  const eps = shape.layerNormEps ?? 1e-12;
  if (H % heads !== 0) throw new RangeError(`hidden (${H}) must be a multiple of heads (${heads})`);
  const random = mulberry32(seed);
  const vocab = makeVocab(V, random);
  // Scaled so that activations stay of order one and attention is far from uniform.
  const linear = (out: number, inp: number) => ({ weight: normal(random, out * inp, 1 / Math.sqrt(inp)), bias: normal(random, out, 0.1) });
  const norm = () => ({ weight: normal(random, H, 0.1, 1), bias: normal(random, H, 0.1) });

  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const put = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { shape, data });
  put('embeddings.word_embeddings.weight', [V, H], normal(random, V * H, 1));
  put('embeddings.position_embeddings.weight', [P, H], normal(random, P * H, 0.5));
  put('embeddings.token_type_embeddings.weight', [T, H], normal(random, T * H, 0.5));
  const en = norm();
  put('embeddings.LayerNorm.weight', [H], en.weight);
  put('embeddings.LayerNorm.bias', [H], en.bias);
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const part of ['query', 'key', 'value']) {
      const lin = linear(H, H);
      put(`${p}attention.self.${part}.weight`, [H, H], lin.weight);
      put(`${p}attention.self.${part}.bias`, [H], lin.bias);
    }
    const ao = linear(H, H);
    put(`${p}attention.output.dense.weight`, [H, H], ao.weight);
    put(`${p}attention.output.dense.bias`, [H], ao.bias);
    const an = norm();
    put(`${p}attention.output.LayerNorm.weight`, [H], an.weight);
    put(`${p}attention.output.LayerNorm.bias`, [H], an.bias);
    const inter = linear(I, H);
    put(`${p}intermediate.dense.weight`, [I, H], inter.weight);
    put(`${p}intermediate.dense.bias`, [I], inter.bias);
    const out = linear(H, I);
    put(`${p}output.dense.weight`, [H, I], out.weight);
    put(`${p}output.dense.bias`, [H], out.bias);
    const on = norm();
    put(`${p}output.LayerNorm.weight`, [H], on.weight);
    put(`${p}output.LayerNorm.bias`, [H], on.bias);
  }

  const config = {
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_size: H,
    num_attention_heads: heads,
    num_hidden_layers: layers,
    intermediate_size: I,
    vocab_size: V,
    max_position_embeddings: P,
    type_vocab_size: T,
    layer_norm_eps: eps,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
  };

  await mkdir(dir, { recursive: true });
  const files = {
    config: join(dir, 'config.json'),
    vocab: join(dir, 'vocab.txt'),
    safetensors: join(dir, 'model.safetensors'),
    onnx: join(dir, 'model.onnx'),
  };
  await writeFile(files.config, `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(files.vocab, vocab.map((t) => `${t}\n`).join(''));
  await writeSafetensors(files.safetensors, tensors, { format: 'pt' });
  await writeFile(files.onnx, bertOnnx(tensors, { layers, H, heads, I, eps }));
  return { dir, config, vocab, files };
}

/**
 * The same network as an ONNX graph (opset 17): what Hugging Face's BertModel computes in
 * inference (absolute positions, additive -10000 mask, erf GELU), then sentence-transformers'
 * mean pooling and l2 normalisation. Outputs `embeddings` [batch, hidden] and `last_hidden_state`.
 */
function bertOnnx(tensors: Map<string, { shape: number[]; data: Float32Array }>, s: { layers: number; H: number; heads: number; I: number; eps: number }): Uint8Array {
  const g = new OnnxGraph('random_bert');
  const t = (name: string): string => g.initializer(name, tensors.get(name)!.shape, tensors.get(name)!.data);
  const linear = (x: string, name: string, inp: number, out: number): string => {
    const w = tensors.get(`${name}.weight`)!;
    const wt = g.initializer(`${name}.weight_t`, [inp, out], transpose(w.data, out, inp));
    return g.op('Add', [g.op('MatMul', [x, wt]), t(`${name}.bias`)]);
  };
  const layerNorm = (x: string, name: string): string => g.op('LayerNormalization', [x, t(`${name}.weight`), t(`${name}.bias`)], { axis: { i: -1 }, epsilon: { f: s.eps } });

  const ids = g.input('input_ids', OnnxType.INT64, ['batch', 'seq']);
  const mask = g.input('attention_mask', OnnxType.INT64, ['batch', 'seq']);
  const types = g.input('token_type_ids', OnnxType.INT64, ['batch', 'seq']);
  const words = g.op('Gather', [t('embeddings.word_embeddings.weight'), ids], { axis: { i: 0 } });
  const seqLen = g.op('Slice', [g.op('Shape', [ids]), g.int64s([1]), g.int64s([2])]);
  const positions = g.op('Slice', [t('embeddings.position_embeddings.weight'), g.int64s([0]), seqLen, g.int64s([0])]);
  const segments = g.op('Gather', [t('embeddings.token_type_embeddings.weight'), types], { axis: { i: 0 } });
  let x = layerNorm(g.op('Add', [g.op('Add', [words, positions]), segments]), 'embeddings.LayerNorm');

  const maskF = g.op('Cast', [mask], { to: { i: OnnxType.FLOAT } });
  const maskBias = g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [g.floats([1], []), maskF]), g.floats([-10000], [])]), g.int64s([1, 2])]);
  const headDim = s.H / s.heads;
  const split = g.int64s([0, 0, s.heads, headDim]);
  const merge = g.int64s([0, 0, s.H]);
  const scale = g.floats([1 / Math.sqrt(headDim)], []);
  for (let l = 0; l < s.layers; l++) {
    const p = `encoder.layer.${l}.`;
    const heads = (y: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [y, split])], { perm: { ints: perm } });
    const q = heads(linear(x, `${p}attention.self.query`, s.H, s.H), [0, 2, 1, 3]);
    const k = heads(linear(x, `${p}attention.self.key`, s.H, s.H), [0, 2, 3, 1]);
    const v = heads(linear(x, `${p}attention.self.value`, s.H, s.H), [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, k]), scale]), maskBias]);
    const probs = g.op('Softmax', [scores], { axis: { i: -1 } });
    const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: { ints: [0, 2, 1, 3] } }), merge]);
    const attended = layerNorm(g.op('Add', [linear(context, `${p}attention.output.dense`, s.H, s.H), x]), `${p}attention.output.LayerNorm`);
    const h = linear(attended, `${p}intermediate.dense`, s.H, s.I);
    const gelu = g.op('Mul', [g.op('Mul', [h, g.floats([0.5], [])]), g.op('Add', [g.floats([1], []), g.op('Erf', [g.op('Div', [h, g.floats([Math.SQRT2], [])])])])]);
    x = layerNorm(g.op('Add', [linear(gelu, `${p}output.dense`, s.I, s.H), attended]), `${p}output.LayerNorm`);
  }
  g.op('Identity', [x], {}, 'last_hidden_state');
  const mask3 = g.op('Unsqueeze', [maskF, g.int64s([2])]);
  const summed = g.op('ReduceSum', [g.op('Mul', [x, mask3]), g.int64s([1])], { keepdims: { i: 0 } });
  const counted = g.op('Max', [g.op('ReduceSum', [mask3, g.int64s([1])], { keepdims: { i: 0 } }), g.floats([1e-9], [])]);
  const mean = g.op('Div', [summed, counted]);
  const length = g.op('Sqrt', [g.op('ReduceSum', [g.op('Mul', [mean, mean]), g.int64s([1])], { keepdims: { i: 1 } })]);
  g.op('Div', [mean, g.op('Max', [length, g.floats([1e-12], [])])], {}, 'embeddings');
  g.output('embeddings', OnnxType.FLOAT, ['batch', s.H]);
  g.output('last_hidden_state', OnnxType.FLOAT, ['batch', 'seq', s.H]);
  return g.encode(17);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      layers: { type: 'string', default: '2' },
      hidden: { type: 'string', default: '64' },
      heads: { type: 'string', default: '4' },
      intermediate: { type: 'string', default: '256' },
      vocab: { type: 'string', default: '1000' },
      positions: { type: 'string', default: '128' },
      seed: { type: 'string', default: '1' },
    },
  });
  if (values.out === undefined) {
    console.error('usage: node dist/scripts/random-bert.js --out DIR [--layers N] [--hidden N] [--heads N] [--intermediate N] [--vocab N] [--positions N] [--seed N]');
    process.exit(2);
  }
  const model = await makeRandomBert(values.out, {
    layers: Number(values.layers),
    hidden: Number(values.hidden),
    heads: Number(values.heads),
    intermediate: Number(values.intermediate),
    vocabSize: Number(values.vocab),
    maxPositions: Number(values.positions),
  }, Number(values.seed));
  console.log(`wrote ${Object.values(model.files).join(', ')}`);
}
