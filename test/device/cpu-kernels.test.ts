/**
 * The CPU backend's transformer kernels at the shapes an encoder runs, against the float64
 * references: attention (on AVX-512 CPUs its own kernel: 16-key vectors, 4-row blocks, value
 * columns in passes of 64, V copied for long key runs) and the GEMM's fused GELU epilogue on
 * weights packed once (a Linear layer from a safetensors file). The conformance suite covers
 * the small and odd shapes; these are the ones where the blocking changes.
 * Tolerances as conformance.test.ts: |got - want| <= 1e-4 + 1e-4 |want| (matmul: 2e-4 relative).
 */
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device } from '../../src/device/device.js';
import { loadDeviceBinding } from '../../src/device/device-binding.js';
import type { DeviceTensor } from '../../src/device/device-tensor.js';
import { writeSafetensors } from '../../src/device/safetensors-file.js';
import { mulberry32 } from '../support/prng.js';
import * as ref from './reference-ops.js';
import { TensorScope } from './tensor-scope.js';

const binding = loadDeviceBinding();
const dev = new Device(binding, binding.newSession(), binding.openBackend('cpu'));
const scope = new TensorScope(dev);
after(() => scope.freeAll());
const { put, run } = scope;
const out = (shape: number[]): DeviceTensor => scope.out('f32', shape);

const rnd = mulberry32(0x5eed);
const values = (n: number, spread = 1): Float32Array => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * spread);

describe('CPU attention at encoder shapes', () => {
  const cases = [
    { batch: 3, heads: 12, headDim: 32, valueDim: 32, seqQ: 16, seqK: 16, causal: false, mask: true, spread: 1 },
    { batch: 2, heads: 4, headDim: 32, valueDim: 32, seqQ: 128, seqK: 128, causal: false, mask: true, spread: 1 },
    { batch: 1, heads: 2, headDim: 64, valueDim: 64, seqQ: 33, seqK: 33, causal: true, mask: false, spread: 1 },
    { batch: 2, heads: 3, headDim: 48, valueDim: 80, seqQ: 7, seqK: 45, causal: false, mask: true, spread: 1 },
    { batch: 1, heads: 2, headDim: 17, valueDim: 16, seqQ: 45, seqK: 19, causal: true, mask: true, spread: 1 },
    // Scores far apart (differences past exp's range): the small weights must come out as 0, not 1.
    { batch: 2, heads: 2, headDim: 32, valueDim: 32, seqQ: 16, seqK: 40, causal: false, mask: true, spread: 12 },
  ];
  for (const c of cases) {
    const name = `b${c.batch} h${c.heads} d${c.headDim}/${c.valueDim} q${c.seqQ} k${c.seqK}${c.causal ? ' causal' : ''}${c.mask ? ' masked' : ''}${c.spread > 1 ? ' wide scores' : ''}`;
    test(name, async () => {
      const q = values(c.batch * c.seqQ * c.heads * c.headDim, c.spread);
      const k = values(c.batch * c.seqK * c.heads * c.headDim, c.spread);
      const v = values(c.batch * c.seqK * c.heads * c.valueDim);
      // Padding-like masks: sequence b keeps all but its last 3b keys; with several, the last keeps none.
      const mask = Int32Array.from({ length: c.batch * c.seqK }, (_, i) => {
        const b = Math.floor(i / c.seqK), j = i % c.seqK;
        if (c.batch > 1 && b === c.batch - 1) return 0;
        return j < c.seqK - 3 * b ? 1 : 0;
      });
      const tq = await put(q, [c.batch, c.seqQ, c.heads * c.headDim]);
      const tk = await put(k, [c.batch, c.seqK, c.heads * c.headDim]);
      const tv = await put(v, [c.batch, c.seqK, c.heads * c.valueDim]);
      const tm = c.mask ? await put(mask, [c.batch, c.seqK]) : undefined;
      const to = out([c.batch, c.seqQ, c.heads * c.valueDim]);
      await run((l) => l.attention(tq, tk, tv, to, { heads: c.heads, causal: c.causal, ...(tm ? { mask: tm } : {}) }));
      const { batch, heads, headDim, valueDim, seqQ, seqK, causal } = c;
      const want = ref.attention(q, k, v, { batch, heads, headDim, valueDim, seqQ, seqK, causal, scale: 1 / Math.sqrt(headDim), ...(c.mask ? { mask } : {}) });
      ref.assertClose(await dev.download(to), want, { atol: 1e-4, rtol: 1e-4 }, name);
    });
  }
});

describe('CPU GEMM with a fused GELU on packed weights', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'caphost-kernels-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const activation of ['gelu', 'gelu_tanh'] as const) {
    test(`[m x 384] · [1536 x 384]^T + bias, ${activation}, m = 16, 13, 128`, async () => {
      const n = 1536, k = 384;
      const w = values(n * k, 0.2), bias = values(n, 0.5);
      const path = join(dir, `${activation}.safetensors`);
      await writeSafetensors(path, { w: { shape: [n, k], data: w }, b: { shape: [n], data: bias } });
      const weights = await dev.loadSafetensors(path);
      try {
        for (const m of [16, 13, 128]) {
          const a = values(m * k);
          const ta = await put(a, [m, k]);
          const to = out([m, n]);
          await run((l) => l.matmul(ta, weights.get('w')!, to, { transB: true, bias: weights.get('b')!, activation }));
          const want = ref.matmul(a, w, { batch: 1, m, n, k, transA: false, transB: true, sharedB: false, alpha: 1, activation, bias });
          ref.assertClose(await dev.download(to), want, { atol: 1e-4, rtol: 2e-4 }, `m ${m} ${activation}`);
        }
      } finally {
        for (const handle of weights.handles) dev.free(handle);
      }
    });
  }
});
