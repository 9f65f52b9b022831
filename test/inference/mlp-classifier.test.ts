import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { Device } from '../../src/device/device.js';
import { loadDeviceBinding } from '../../src/device/device-binding.js';
import { writeSafetensors } from '../../src/device/safetensors-file.js';
import { MlpClassifier } from '../../src/inference/mlp-classifier.js';
import { OnnxGraph, OnnxType } from '../../scripts/onnx-graph.js';
import { mulberry32 } from '../support/prng.js';

describe('MlpClassifier on the CPU device', () => {
  it('gives onnxruntime-node\'s class probabilities (max abs error < 1e-5), also past maxBatch', async () => {
    const random = mulberry32(5);
    const sizes = [24, 40, 32, 7];
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    const g = new OnnxGraph('mlp');
    let x = g.input('x', OnnxType.FLOAT, ['batch', sizes[0]!]);
    for (let i = 0; i + 1 < sizes.length; i++) {
      const [inp, out] = [sizes[i]!, sizes[i + 1]!];
      const w = Float32Array.from({ length: out * inp }, () => (random() * 2 - 1) / Math.sqrt(inp));
      const b = Float32Array.from({ length: out }, () => random() * 0.2 - 0.1);
      tensors.set(`layers.${i}.weight`, { shape: [out, inp], data: w });
      tensors.set(`layers.${i}.bias`, { shape: [out], data: b });
      const wt = new Float32Array(w.length);
      for (let r = 0; r < out; r++) for (let c = 0; c < inp; c++) wt[c * out + r] = w[r * inp + c]!;
      x = g.op('Add', [g.op('MatMul', [x, g.initializer(`w${i}`, [inp, out], wt)]), g.initializer(`b${i}`, [out], b)]);
      if (i + 2 < sizes.length) x = g.op('Relu', [x]);
    }
    g.op('Softmax', [x], { axis: { i: -1 } }, 'probs');
    g.output('probs', OnnxType.FLOAT, ['batch', sizes[sizes.length - 1]!]);
    const dir = await mkdtemp(join(tmpdir(), 'caphost-mlp-'));
    const binding = loadDeviceBinding();
    const session = binding.newSession();
    const device = new Device(binding, session, binding.openBackend('cpu'));
    try {
      await writeSafetensors(join(dir, 'mlp.safetensors'), tensors);
      await writeFile(join(dir, 'mlp.onnx'), g.encode(17));
      const weights = await device.loadSafetensors(join(dir, 'mlp.safetensors'));
      const mlp = new MlpClassifier(device, weights, { maxBatch: 4 });
      assert.equal(mlp.inputs, 24);
      assert.equal(mlp.classes, 7);
      const rows = 10;
      const input = Float32Array.from({ length: rows * 24 }, () => random() * 4 - 2);
      const mine = await mlp.classify(input, rows);
      const ortSession = await ort.InferenceSession.create(join(dir, 'mlp.onnx'));
      const theirs = (await ortSession.run({ x: new ort.Tensor('float32', input, [rows, 24]) }))['probs']!.data as Float32Array;
      await ortSession.release();
      let err = 0;
      for (let i = 0; i < mine.length; i++) err = Math.max(err, Math.abs(mine[i]! - theirs[i]!));
      assert.ok(err < 1e-5, `max abs error ${err}`);
      for (let r = 0; r < rows; r++) assert.ok(Math.abs(mine.subarray(r * 7, r * 7 + 7).reduce((a, b) => a + b, 0) - 1) < 1e-5);
      await assert.rejects(mlp.classify(new Float32Array(5), 1), /1 rows of 24 inputs need 24 values, got 5/);
      mlp.close();
      assert.throws(() => new MlpClassifier(device, weights, { prefix: 'head' }), /no layers: the weights have no "head\.0\.weight"/);
      for (const handle of weights.handles) device.free(handle);
    } finally {
      binding.dropSession(session);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
