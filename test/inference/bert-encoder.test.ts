import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { Controller } from '../../src/index.js';
import { Device } from '../../src/device/device.js';
import { loadDeviceBinding } from '../../src/device/device-binding.js';
import { readSafetensors } from '../../src/device/safetensors-file.js';
import { BertEncoder } from '../../src/inference/bert-encoder.js';
import { parseBertConfig } from '../../src/inference/bert-config.js';
import { WordPieceTokenizer, type EncodedBatch } from '../../src/inference/wordpiece-tokenizer.js';
import { makeRandomBert, type RandomBert } from '../../scripts/random-bert.js';
import { bertReference, type ReferenceConfig } from '../support/bert-reference.js';

// caphost's encoder against onnxruntime-node on the same model and the same token ids. Both run
// f32 with different kernels and summation orders; on unit vectors of this model the difference
// stays below 1e-4 (measured: about 1e-7). TOLERANCE is that bound.
const TOLERANCE = 1e-4;
const SHAPE = { layers: 2, hidden: 64, heads: 4, intermediate: 128, vocabSize: 600, maxPositions: 64 };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('BertEncoder on the CPU device against onnxruntime-node', () => {
  let dir: string;
  let model: RandomBert;
  let tokenizer: WordPieceTokenizer;
  let session: ort.InferenceSession;
  let texts: string[];

  const ortEmbed = async (batch: EncodedBatch): Promise<Float32Array> => {
    const feed = (data: Int32Array) => new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), [batch.batch, batch.seqLen]);
    const out = await session.run({ input_ids: feed(batch.inputIds), attention_mask: feed(batch.attentionMask), token_type_ids: feed(batch.tokenTypeIds) });
    return out['embeddings']!.data as Float32Array;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'caphost-bert-'));
    model = await makeRandomBert(dir, SHAPE, 11);
    tokenizer = WordPieceTokenizer.fromVocabText(await readFile(model.files.vocab, 'utf8'));
    session = await ort.InferenceSession.create(model.files.onnx);
    const words = model.vocab.filter((t) => /^[a-z]{2,}$/.test(t));
    texts = Array.from({ length: 9 }, (_, i) => words.slice(i * 5, i * 5 + 1 + ((i * 7) % 20)).join(i % 2 === 0 ? ' ' : ', '));
  });
  after(async () => {
    await session.release();
    await rm(dir, { recursive: true, force: true });
  });

  it(`gives onnxruntime's embeddings (max abs error < ${TOLERANCE}) on padded batches of several shapes`, async () => {
    const binding = loadDeviceBinding();
    const sessionId = binding.newSession();
    const device = new Device(binding, sessionId, binding.openBackend('cpu'));
    const weights = await device.loadSafetensors(model.files.safetensors);
    const config = parseBertConfig(model.config);
    const encoder = new BertEncoder(device, weights, config, { maxBatch: 4, maxSeq: 64 });
    try {
      for (const group of [texts.slice(0, 1), texts.slice(0, 3), texts]) {
        const batch = tokenizer.encodeBatch(group, { maxLength: 64 });
        const mine = await encoder.embed(batch);
        const theirs = await ortEmbed(batch);
        const err = maxAbsDiff(mine, theirs);
        assert.ok(err < TOLERANCE, `batch of ${group.length} (seq ${batch.seqLen}): max abs error ${err}`);
        // And the float64 reference, from the definition.
        const file = await readSafetensors(model.files.safetensors);
        const ref = bertReference(new Map([...file.tensors].map(([n, t]) => [n, { data: t.data as Float32Array }])), model.config as unknown as ReferenceConfig, batch.batch, batch.seqLen, batch.inputIds, batch.attentionMask, batch.tokenTypeIds);
        assert.ok(maxAbsDiff(mine, ref.embeddings) < TOLERANCE);
      }
      // Padding does not change a sequence's embedding.
      const alone = await encoder.embed(tokenizer.encodeBatch([texts[0]!]));
      const padded = await encoder.embed(tokenizer.encodeBatch([texts[0]!], { padding: 'max_length', maxLength: 40 }));
      assert.ok(maxAbsDiff(alone, padded) < TOLERANCE);
    } finally {
      encoder.close();
      for (const handle of weights.handles) device.free(handle);
      binding.dropSession(sessionId);
    }
  });

  it('refuses weights that do not match config.json, naming the tensor', async () => {
    const binding = loadDeviceBinding();
    const sessionId = binding.newSession();
    const device = new Device(binding, sessionId, binding.openBackend('cpu'));
    const weights = await device.loadSafetensors(model.files.safetensors);
    try {
      const wrong = parseBertConfig({ ...model.config, intermediate_size: 96 });
      assert.throws(() => new BertEncoder(device, weights, wrong), /encoder\.layer\.0\.intermediate\.dense\.weight" is \[128, 64\], config\.json implies \[96, 64\]/);
      const missing = new Map(weights);
      missing.delete('encoder.layer.1.output.LayerNorm.bias');
      assert.throws(() => new BertEncoder(device, missing, parseBertConfig(model.config)), /no tensor "encoder\.layer\.1\.output\.LayerNorm\.bias"/);
    } finally {
      for (const handle of weights.handles) device.free(handle);
      binding.dropSession(sessionId);
    }
  });

  it('examples/embed-worker serves embed.text@1 with batching, each call getting its own vectors', async () => {
    process.env['CAPHOST_EMBED_MODEL'] = dir;
    const controller = await Controller.start({
      logger: 'silent',
      device: 'cpu',
      workers: [{ module: new URL('../../examples/embed-worker/embed-worker.js', import.meta.url), strategy: 'thread', weights: model.files.safetensors }],
    });
    try {
      const calls = texts.map((text, i) => controller.call<{ vectors: { dtype: string; shape: number[]; data: Float32Array } }>('embed.text@1', { texts: i % 3 === 0 ? [text, texts[0]!] : [text] }));
      const answers = await Promise.all(calls);
      for (let i = 0; i < texts.length; i++) {
        const { vectors } = answers[i]!;
        const group = i % 3 === 0 ? [texts[i]!, texts[0]!] : [texts[i]!];
        assert.equal(vectors.dtype, 'f32');
        assert.deepEqual(vectors.shape, [group.length, SHAPE.hidden]);
        const theirs = await ortEmbed(tokenizer.encodeBatch(group, { maxLength: 128 }));
        const err = maxAbsDiff(vectors.data, theirs);
        assert.ok(err < TOLERANCE, `call ${i}: max abs error ${err}`);
      }
      const stats = controller.stats().capabilities['embed.text@1']!;
      assert.equal(stats.ok, texts.length);
    } finally {
      await controller.close();
      delete process.env['CAPHOST_EMBED_MODEL'];
    }
  });

  it('examples/embed-worker runs sandboxed in a process worker, its model files given as config', async () => {
    const controller = await Controller.start({
      logger: 'silent',
      device: 'cpu',
      workers: [{
        module: new URL('../../examples/embed-worker/embed-worker.js', import.meta.url),
        strategy: 'process',
        weights: model.files.safetensors,
        config: { config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), vocab: readFileSync(join(dir, 'vocab.txt'), 'utf8') },
      }],
    });
    try {
      const { vectors } = await controller.call<{ vectors: { dtype: string; shape: number[]; data: Float32Array } }>('embed.text@1', { texts: [texts[1]!] });
      const theirs = await ortEmbed(tokenizer.encodeBatch([texts[1]!], { maxLength: 128 }));
      const err = maxAbsDiff(vectors.data, theirs);
      assert.ok(err < TOLERANCE, `max abs error ${err}`);
    } finally {
      await controller.close();
    }
  });
});
