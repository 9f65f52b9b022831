import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { readSafetensors } from '../../src/device/safetensors-file.js';
import { WordPieceTokenizer } from '../../src/inference/wordpiece-tokenizer.js';
import { makeRandomBert, type RandomBert } from '../../scripts/random-bert.js';
import { bertReference, type ReferenceConfig } from '../support/bert-reference.js';

// The script's two artefacts must be the same network: the ONNX graph (run by onnxruntime)
// and the safetensors weights (run by a float64 reference written from the model's definition).
describe('scripts/random-bert: the ONNX graph computes what the safetensors weights define', () => {
  let dir: string;
  let model: RandomBert;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'caphost-random-bert-'));
    model = await makeRandomBert(dir, { layers: 2, hidden: 48, heads: 4, intermediate: 96, vocabSize: 500, maxPositions: 64 }, 7);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes the usual Hugging Face files and tensor names', async () => {
    const config = JSON.parse(await readFile(model.files.config, 'utf8')) as Record<string, unknown>;
    assert.equal(config['model_type'], 'bert');
    assert.equal(config['num_hidden_layers'], 2);
    const file = await readSafetensors(model.files.safetensors);
    const names = [...file.tensors.keys()];
    for (const name of ['embeddings.word_embeddings.weight', 'embeddings.LayerNorm.bias', 'encoder.layer.1.attention.self.value.weight', 'encoder.layer.0.intermediate.dense.bias', 'encoder.layer.1.output.LayerNorm.weight']) {
      assert.ok(names.includes(name), `missing ${name}`);
    }
    assert.deepEqual(file.tensors.get('encoder.layer.0.intermediate.dense.weight')!.shape, [96, 48]);
    const tokenizer = WordPieceTokenizer.fromVocabText(await readFile(model.files.vocab, 'utf8'));
    assert.equal(tokenizer.vocab.size, 500);
  });

  it('onnxruntime and the float64 reference agree within 1e-4 on padded batches', async () => {
    const file = await readSafetensors(model.files.safetensors);
    const weights = new Map([...file.tensors].map(([name, t]) => [name, { data: t.data as Float32Array }]));
    const tokenizer = WordPieceTokenizer.fromVocabText(await readFile(model.files.vocab, 'utf8'));
    const words = model.vocab.filter((t) => /^[a-z]{3,}$/.test(t));
    const texts = [words.slice(0, 12).join(' '), `${words[20]}, ${words[21]}!`, words.slice(30, 31).join(' ')];
    const batch = tokenizer.encodeBatch(texts, { maxLength: 64 });
    const session = await ort.InferenceSession.create(model.files.onnx);
    try {
      const feed = (data: Int32Array) => new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), [batch.batch, batch.seqLen]);
      const out = await session.run({ input_ids: feed(batch.inputIds), attention_mask: feed(batch.attentionMask), token_type_ids: feed(batch.tokenTypeIds) });
      const got = out['embeddings']!.data as Float32Array;
      const ref = bertReference(weights, model.config as unknown as ReferenceConfig, batch.batch, batch.seqLen, batch.inputIds, batch.attentionMask, batch.tokenTypeIds);
      let maxErr = 0;
      for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - ref.embeddings[i]!));
      assert.ok(maxErr < 1e-4, `max abs error ${maxErr}`);
      // Hidden states of real tokens agree too (padding rows are not compared: nothing reads them).
      const hidden = out['last_hidden_state']!.data as Float32Array;
      let hiddenErr = 0;
      for (let r = 0; r < batch.batch * batch.seqLen; r++) {
        if (batch.attentionMask[r] === 0) continue;
        for (let c = 0; c < 48; c++) hiddenErr = Math.max(hiddenErr, Math.abs(hidden[r * 48 + c]! - ref.hidden[r * 48 + c]!));
      }
      assert.ok(hiddenErr < 1e-3, `hidden state max abs error ${hiddenErr}`);
      // The embeddings are unit vectors and differ between the texts.
      for (let b = 0; b < batch.batch; b++) {
        const row = got.subarray(b * 48, (b + 1) * 48);
        assert.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5);
      }
      assert.notDeepEqual([...got.subarray(0, 48)], [...got.subarray(48, 96)]);
    } finally {
      await session.release();
    }
  });
});
