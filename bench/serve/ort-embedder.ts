/**
 * onnxruntime-node as the application would use it for embeddings: tokenize in JavaScript,
 * session.run on one sequence, read the pooled, normalised vector. Shared by the in-process
 * baseline and the piscina worker.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { WordPieceTokenizer } from '../../src/inference/wordpiece-tokenizer.js';

export interface OrtEmbedder {
  embed(text: string): Promise<Float32Array>;
  release(): Promise<void>;
}

export async function createOrtEmbedder(dir: string, maxTokens: number, intraOpNumThreads: number): Promise<OrtEmbedder> {
  const tokenizer = WordPieceTokenizer.fromVocabText(readFileSync(join(dir, 'vocab.txt'), 'utf8'));
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { intraOpNumThreads, interOpNumThreads: 1, executionMode: 'sequential' });
  return {
    async embed(text: string): Promise<Float32Array> {
      const { ids } = tokenizer.encode(text, undefined, { maxLength: maxTokens });
      const n = ids.length;
      const input = new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, n]);
      const ones = new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
      const zeros = new ort.Tensor('int64', new BigInt64Array(n), [1, n]);
      const out = await session.run({ input_ids: input, attention_mask: ones, token_type_ids: zeros }, ['embeddings']);
      return out['embeddings']!.data as Float32Array;
    },
    release: () => session.release(),
  };
}
