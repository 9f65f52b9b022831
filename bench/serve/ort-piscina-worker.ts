/** Piscina worker for the serve suite: one onnxruntime session per thread, one sequence per task. */
import { workerData } from 'node:worker_threads';
import { createOrtEmbedder } from './ort-embedder.js';

const { dir, maxTokens } = workerData as { dir: string; maxTokens: number };
const embedder = await createOrtEmbedder(dir, maxTokens, 1);

export default function embed(text: string): Promise<Float32Array> {
  return embedder.embed(text);
}
