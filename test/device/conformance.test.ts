/**
 * Cross-backend conformance: every op of the device op set, on every backend this machine can
 * open, against the float64 references in reference-ops.ts, over seeded random shapes that
 * include the edge sizes (1, primes, non-multiples of every vector width). Tolerances are per
 * dtype: |got - want| <= atol + rtol * |want|.
 *   f32: atol 1e-4, rtol 1e-4 (matmul: rtol 2e-4, for k-long f32 sums)
 *   f16 storage: atol 2e-3, rtol 2e-3 (half has an 11-bit significand)
 *   bf16 storage: atol 1e-2, rtol 1e-2 (8-bit significand)
 * A GPU backend that is not present is reported with its reason and skipped.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from '../../src/device/device.js';
import { loadDeviceBinding } from '../../src/device/device-binding.js';
import { chooseDevice } from '../../src/device/device-selection.js';
import type { DeviceTensor } from '../../src/device/device-tensor.js';
import { mulberry32 } from '../support/prng.js';
import * as ref from './reference-ops.js';
import { assertClose as close } from './reference-ops.js';
import { TensorScope } from './tensor-scope.js';

const binding = loadDeviceBinding();
const session = binding.newSession();

interface Target {
  readonly name: string;
  readonly device?: Device;
  readonly skip?: string;
}

function targets(): Target[] {
  const out: Target[] = [{ name: 'cpu', device: new Device(binding, session, binding.openBackend('cpu')) }];
  for (const kind of ['cuda', 'metal'] as const) {
    try {
      const choice = chooseDevice(kind, binding);
      out.push({ name: kind, device: new Device(binding, session, choice.backend) });
    } catch (err) {
      out.push({ name: kind, skip: `${kind} not available here: ${(err as Error).message}` });
    }
  }
  return out;
}

const EDGE = [1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 65];
const TOL: Record<'f32' | 'f16' | 'bf16', { atol: number; rtol: number }> = {
  f32: { atol: 1e-4, rtol: 1e-4 },
  f16: { atol: 2e-3, rtol: 2e-3 },
  bf16: { atol: 1e-2, rtol: 1e-2 },
};

for (const target of targets()) {
  describe(`device conformance: ${target.name}`, { skip: target.skip }, () => {
    const dev = target.device!;
    const scope = new TensorScope(dev);
    after(() => scope.freeAll());
    const { put, out, run } = scope;
    const rnd = mulberry32(0xc0ffee ^ target.name.length);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const values = (n: number, spread = 1): Float32Array => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * spread);
    const get = async (t: DeviceTensor): Promise<number[]> => {
      const raw = await dev.download(t);
      if (t.dtype === 'f16') return Array.from(raw, (h) => ref.fromF16Bits(h));
      if (t.dtype === 'bf16') return Array.from(raw, (h) => ref.fromBf16Bits(h));
      return Array.from(raw);
    };

    test('matmul f32: batches, transposes, bias, alpha and every activation', async () => {
      for (let c = 0; c < 14; c++) {
        const m = pick(EDGE), n = pick(EDGE), k = pick(EDGE), batch = pick([1, 1, 2, 3]);
        const transA = rnd() < 0.3, transB = rnd() < 0.5, sharedB = batch > 1 && rnd() < 0.5;
        const activation = pick(['none', 'relu', 'gelu', 'gelu_tanh'] as const);
        const alpha = rnd() < 0.3 ? 0.125 : 1;
        const a = values(batch * m * k), b = values((sharedB ? 1 : batch) * k * n), bias = rnd() < 0.6 ? values(n) : undefined;
        const ta = await put(a, [batch, transA ? k : m, transA ? m : k]);
        const tb = await put(b, sharedB ? [transB ? n : k, transB ? k : n] : [batch, transB ? n : k, transB ? k : n]);
        const tbias = bias ? await put(bias, [n]) : undefined;
        const to = out('f32', [batch, m, n]);
        await run((l) => l.matmul(ta, tb, to, { transA, transB, alpha, activation, ...(tbias ? { bias: tbias } : {}) }));
        const want = ref.matmul(a, b, { batch, m, n, k, transA, transB, sharedB, alpha, activation, ...(bias ? { bias } : {}) });
        close(await get(to), want, { atol: 1e-4, rtol: 2e-4 }, `matmul case ${c} [${batch}x${m}x${k}]·[${k}x${n}] ${activation}`);
      }
    });

    test('matmul f16 and bf16 inputs, f32 and narrow outputs', async () => {
      for (const dtype of ['f16', 'bf16'] as const) {
        for (let c = 0; c < 4; c++) {
          const m = pick(EDGE), n = pick(EDGE), k = pick(EDGE);
          const enc = dtype === 'f16' ? ref.toF16Bits : ref.toBf16Bits, dec = dtype === 'f16' ? ref.fromF16Bits : ref.fromBf16Bits;
          const a = Uint16Array.from(values(m * k), enc), b = Uint16Array.from(values(k * n), enc);
          const ta = await put(a, [m, k], dtype), tb = await put(b, [k, n], dtype);
          const outType = c % 2 === 0 ? 'f32' : dtype;
          const to = out(outType, [m, n]);
          await run((l) => l.matmul(ta, tb, to));
          const want = ref.matmul(Array.from(a, dec), Array.from(b, dec), { batch: 1, m, n, k, transA: false, transB: false, sharedB: false, alpha: 1, activation: 'none' });
          close(await get(to), want, TOL[dtype], `matmul ${dtype}→${outType} [${m}x${k}]·[${k}x${n}]`);
        }
      }
    });

    test('add and mul, same shape and broadcast over rows', async () => {
      for (let c = 0; c < 8; c++) {
        const r = pick(EDGE), cols = pick(EDGE) * pick([1, 3]), broadcast = c % 2 === 1;
        const a = values(r * cols), b = values(broadcast ? cols : r * cols);
        const ta = await put(a, [r, cols]), tb = await put(b, broadcast ? [cols] : [r, cols]);
        const sum = out('f32', [r, cols]), prod = out('f32', [r, cols]);
        await run((l) => l.add(ta, tb, sum).mul(ta, tb, prod));
        const bAt = (i: number): number => b[broadcast ? i % cols : i]!;
        close(await get(sum), Array.from(a, (x, i) => x + bAt(i)), TOL.f32, `add ${r}x${cols}`);
        close(await get(prod), Array.from(a, (x, i) => x * bAt(i)), TOL.f32, `mul ${r}x${cols}`);
      }
    });

    test('scale, relu, silu, gelu (erf and tanh), in place too', async () => {
      for (const n of [1, 7, 8, 33, 1000, 70_001]) {
        const x = values(n, 4);
        const tx = await put(x, [n]);
        const outs = ['scale', 'relu', 'silu', 'gelu', 'geluTanh'].map(() => out('f32', [n]));
        await run((l) => l.scale(tx, outs[0]!, -2.5).relu(tx, outs[1]!).silu(tx, outs[2]!).gelu(tx, outs[3]!).gelu(tx, outs[4]!, { approximate: 'tanh' }));
        close(await get(outs[0]!), Array.from(x, (v) => v * -2.5), TOL.f32, `scale ${n}`);
        close(await get(outs[1]!), Array.from(x, ref.relu), TOL.f32, `relu ${n}`);
        close(await get(outs[2]!), Array.from(x, ref.silu), TOL.f32, `silu ${n}`);
        close(await get(outs[3]!), Array.from(x, ref.geluErf), TOL.f32, `gelu ${n}`);
        close(await get(outs[4]!), Array.from(x, ref.geluTanh), TOL.f32, `gelu tanh ${n}`);
        await run((l) => l.relu(tx, tx));
        close(await get(tx), Array.from(x, ref.relu), TOL.f32, `relu in place ${n}`);
      }
    });

    test('softmax, layerNorm, rmsNorm, l2Normalize over the last axis', async () => {
      for (let c = 0; c < 8; c++) {
        const r = pick(EDGE), cols = pick(EDGE) * pick([1, 2, 5]);
        const x = values(r * cols, 3), gamma = values(cols), beta = values(cols);
        const tx = await put(x, [r, cols]), tg = await put(gamma, [cols]), tbeta = await put(beta, [cols]);
        const [sm, ln, rms, l2] = [0, 1, 2, 3].map(() => out('f32', [r, cols]));
        await run((l) => l.softmax(tx, sm!).layerNorm(tx, tg, tbeta, ln!, { eps: 1e-5 }).rmsNorm(tx, tg, rms!, { eps: 1e-6 }).l2Normalize(tx, l2!));
        close(await get(sm!), ref.rows(x, cols, ref.softmaxRow), TOL.f32, `softmax ${r}x${cols}`);
        close(await get(ln!), ref.rows(x, cols, (row) => ref.layerNormRow(row, gamma, beta, 1e-5)), { atol: 3e-4, rtol: 3e-4 }, `layerNorm ${r}x${cols}`);
        close(await get(rms!), ref.rows(x, cols, (row) => ref.rmsNormRow(row, gamma, 1e-6)), { atol: 3e-4, rtol: 3e-4 }, `rmsNorm ${r}x${cols}`);
        close(await get(l2!), ref.rows(x, cols, (row) => ref.l2NormRow(row, 1e-12)), TOL.f32, `l2Normalize ${r}x${cols}`);
      }
    });

    test('embedding gather, and an id outside the table fails the run', async () => {
      for (let c = 0; c < 5; c++) {
        const vocab = pick(EDGE) + 2, hidden = pick(EDGE), count = pick(EDGE);
        const table = values(vocab * hidden);
        const ids = Int32Array.from({ length: count }, () => Math.floor(rnd() * vocab));
        const tt = await put(table, [vocab, hidden]), ti = await put(ids, [count]);
        const to = out('f32', [count, hidden]);
        await run((l) => l.embedding(tt, ti, to));
        close(await get(to), ref.embedding(table, hidden, ids), TOL.f32, `embedding ${vocab}x${hidden}[${count}]`);
        const bad = await put(Int32Array.of(0, vocab), [2]);
        await assert.rejects(run((l) => l.embedding(tt, bad, out('f32', [2, hidden]))), (err: { code?: string; message: string }) => err.code === 'INVALID_ARGUMENT' && /id/.test(err.message));
      }
    });

    test('attention with key mask, causal, cross lengths and odd head sizes', async () => {
      for (let c = 0; c < 10; c++) {
        const batch = pick([1, 2, 3]), heads = pick([1, 2, 3, 4]), headDim = pick([1, 5, 8, 16, 33]), valueDim = pick([headDim, 7]);
        const seqQ = pick(EDGE), seqK = c % 3 === 0 ? seqQ : pick(EDGE);
        const causal = c % 4 === 1;
        const withMask = c % 2 === 0;
        const q = values(batch * seqQ * heads * headDim), k = values(batch * seqK * heads * headDim), v = values(batch * seqK * heads * valueDim);
        const mask = Int32Array.from({ length: batch * seqK }, (_, i) => (i % seqK === 0 || rnd() < 0.7 ? 1 : 0));
        if (withMask && batch > 1) mask.fill(0, 0, seqK); // a batch row with every key masked gives zeros
        const tq = await put(q, [batch, seqQ, heads * headDim]), tk = await put(k, [batch, seqK, heads * headDim]), tv = await put(v, [batch, seqK, heads * valueDim]);
        const tm = withMask ? await put(mask, [batch, seqK]) : undefined;
        const to = out('f32', [batch, seqQ, heads * valueDim]);
        const scale = c % 5 === 0 ? 0.3 : 1 / Math.sqrt(headDim);
        await run((l) => l.attention(tq, tk, tv, to, { heads, causal, ...(c % 5 === 0 ? { scale } : {}), ...(tm ? { mask: tm } : {}) }));
        const want = ref.attention(q, k, v, { batch, seqQ, seqK, heads, headDim, valueDim, scale, causal, ...(withMask ? { mask } : {}) });
        close(await get(to), want, { atol: 2e-4, rtol: 2e-4 }, `attention case ${c} b${batch} h${heads} d${headDim} q${seqQ} k${seqK}${causal ? ' causal' : ''}`);
      }
    });

    test('meanPool with a mask (a fully masked row gives zeros)', async () => {
      for (let c = 0; c < 5; c++) {
        const batch = pick([1, 2, 3, 5]), seq = pick(EDGE), hidden = pick(EDGE);
        const x = values(batch * seq * hidden);
        const mask = Int32Array.from({ length: batch * seq }, () => (rnd() < 0.6 ? 1 : 0));
        if (batch > 1) mask.fill(0, 0, seq);
        const tx = await put(x, [batch, seq, hidden]), tm = await put(mask, [batch, seq]);
        const to = out('f32', [batch, hidden]);
        await run((l) => l.meanPool(tx, tm, to));
        close(await get(to), ref.meanPool(x, mask, batch, seq, hidden), TOL.f32, `meanPool ${batch}x${seq}x${hidden}`);
      }
    });

    test('casts between f32, f16 and bf16 round to nearest even, and copy', async () => {
      const specials = [0, -0, 1, -1, 65504, 65520, 1e-8, 6.1e-5, 5.96e-8, 3.14159, -2.71828, 1e30, 0.1];
      const x = Float32Array.from([...specials, ...values(131, 100)]);
      const n = x.length;
      const tx = await put(x, [n]);
      const h = out('f16', [n]), bf = out('bf16', [n]), back = out('f32', [n]), hb = out('bf16', [n]), cp = out('f32', [n]);
      await run((l) => l.cast(tx, h).cast(tx, bf).cast(h, back).cast(h, hb).copy(tx, cp));
      assert.deepEqual(Array.from(await dev.download(h)), Array.from(x, ref.toF16Bits), 'f32 → f16 bits');
      assert.deepEqual(Array.from(await dev.download(bf)), Array.from(x, ref.toBf16Bits), 'f32 → bf16 bits');
      close(await get(back), Array.from(x, (v) => ref.fromF16Bits(ref.toF16Bits(v))), { atol: 0, rtol: 0 }, 'f16 → f32');
      assert.deepEqual(Array.from(await dev.download(hb)), Array.from(x, (v) => ref.toBf16Bits(ref.fromF16Bits(ref.toF16Bits(v)))), 'f16 → bf16 bits');
      assert.deepEqual(Array.from(await dev.download(cp)), Array.from(x), 'copy');
    });

    test('a list of many ops runs in order, each seeing the one before', async () => {
      const n = 37;
      const x = values(n);
      const tx = await put(x, [1, n]);
      const a = out('f32', [1, n]), b = out('f32', [1, n]);
      await run((l) => l.scale(tx, a, 2).add(a, tx, b).relu(b, a).softmax(a, b).l2Normalize(b, a));
      const want = ref.l2NormRow(ref.softmaxRow(Array.from(x, (v) => ref.relu(3 * v))), 1e-12);
      close(await get(a), want, TOL.f32, 'chained ops');
    });
  });
}
