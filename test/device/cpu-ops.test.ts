import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCpuBinding, type CpuOpsIsa } from '../../src/device/cpu-binding.js';
import { ErrorCode, isCaphostError } from '../../src/errors.js';
import { mulberry32 } from '../support/prng.js';

// Every op against a float64 JS reference on seeded random data, for each op ISA this CPU
// has (the AVX2+FMA kernels and the portable ones, forced with forceIsa). Tolerances, as
// |got - want| <= abs + rel * |want|:
//   add, mul, scale, relu, embedding, casts: exact (the f32-rounded reference / RNE value)
//   silu, gelu (both forms), softmax, meanPool, l2Normalize: abs 1e-6, rel 1e-5
//   layerNorm, rmsNorm: abs 2e-5, rel 2e-5 (f32 row sums over up to 385 values)

const cpu = loadCpuBinding();
const info = cpu.kernelInfo();
const isas = info.opsAvailable;
const ROWS = 3;
const WIDTHS = [1, 7, 33, 385];

function random(seed: number, count: number, span = 8): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rand() * 2 - 1) * (span / 2);
  return out;
}

function check(got: Float32Array, want: ArrayLike<number>, abs: number, rel: number, label: string): void {
  assert.ok(got.length >= want.length, `${label}: output too short`);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!, g = got[i]!;
    const ok = abs === 0 && rel === 0 ? Object.is(g, Math.fround(w)) : Math.abs(g - w) <= abs + rel * Math.abs(w);
    assert.ok(ok, `${label}: [${i}] got ${g}, want ${w}`);
  }
}

function erf(x: number): number {
  if (Math.abs(x) >= 5) return Math.sign(x);
  // Maclaurin series; float64 keeps ~1e-9 at |x| < 5 despite cancellation.
  let term = x, sum = x;
  for (let n = 1; n < 200 && Math.abs(term) > 1e-17; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const ref = {
  silu: (x: number) => x / (1 + Math.exp(-x)),
  geluErf: (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  geluTanh: (x: number) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))),
};

function rowsRef(x: Float32Array, cols: number, f: (row: number[]) => number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / cols; r++) out.push(...f(Array.from(x.subarray(r * cols, (r + 1) * cols))));
  return out;
}

test('kernelInfo lists the op ISAs, scalar included', () => {
  assert.ok(isas.includes('scalar'));
  assert.equal(isas[0], info.opsIsa);
});

test('add and mul, plain and with a broadcast row, are exact', () => {
  for (const forceIsa of isas) {
    for (const cols of WIDTHS) {
      const a = random(cols, ROWS * cols), b = random(cols + 1, ROWS * cols), row = random(cols + 2, cols);
      const out = new Float32Array(ROWS * cols);
      const label = `${forceIsa} cols=${cols}`;
      cpu.add(a, b, out, { rows: ROWS, cols, forceIsa });
      check(out, Array.from(a, (v, i) => v + b[i]!), 0, 0, `add ${label}`);
      cpu.mul(a, b, out, { rows: ROWS, cols, forceIsa });
      check(out, Array.from(a, (v, i) => v * b[i]!), 0, 0, `mul ${label}`);
      cpu.add(a, row, out, { rows: ROWS, cols, broadcast: true, forceIsa });
      check(out, Array.from(a, (v, i) => v + row[i % cols]!), 0, 0, `add bcast ${label}`);
      cpu.mul(a, row, out, { rows: ROWS, cols, broadcast: true, forceIsa });
      check(out, Array.from(a, (v, i) => v * row[i % cols]!), 0, 0, `mul bcast ${label}`);
      const inPlace = a.slice();
      cpu.add(inPlace, b, inPlace, { rows: ROWS, cols, forceIsa });
      check(inPlace, Array.from(a, (v, i) => v + b[i]!), 0, 0, `add in place ${label}`);
    }
  }
});

test('scale, relu, silu and gelu (erf and tanh) match the reference', () => {
  for (const forceIsa of isas) {
    for (const cols of WIDTHS) {
      const n = ROWS * cols, x = random(10 + cols, n, 16), out = new Float32Array(n);
      const label = `${forceIsa} n=${n}`;
      cpu.scale(x, out, { alpha: 0.37, forceIsa });
      check(out, Array.from(x, (v) => v * Math.fround(0.37)), 0, 0, `scale ${label}`);
      cpu.relu(x, out, { forceIsa });
      check(out, Array.from(x, (v) => Math.max(v, 0)), 0, 0, `relu ${label}`);
      cpu.silu(x, out, { forceIsa });
      check(out, Array.from(x, ref.silu), 1e-6, 1e-5, `silu ${label}`);
      cpu.gelu(x, out, { forceIsa });
      check(out, Array.from(x, ref.geluErf), 1e-6, 1e-5, `gelu erf ${label}`);
      cpu.gelu(x, out, { approximate: 'tanh', forceIsa });
      check(out, Array.from(x, ref.geluTanh), 1e-6, 1e-5, `gelu tanh ${label}`);
    }
    const wide = Float32Array.of(-100, -30, 30, 100, 0, -0);
    const out = new Float32Array(wide.length);
    cpu.silu(wide, out, { forceIsa });
    check(out, Array.from(wide, ref.silu), 1e-6, 1e-5, `silu extremes ${forceIsa}`);
  }
});

test('softmax is stable and matches the reference', () => {
  const softmax = (row: number[]) => {
    const m = Math.max(...row), e = row.map((v) => Math.exp(v - m)), s = e.reduce((p, q) => p + q, 0);
    return e.map((v) => v / s);
  };
  for (const forceIsa of isas) {
    for (const cols of WIDTHS) {
      const x = random(20 + cols, ROWS * cols, 40), out = new Float32Array(x.length);
      cpu.softmax(x, out, { rows: ROWS, cols, forceIsa });
      check(out, rowsRef(x, cols, softmax), 1e-6, 1e-5, `softmax ${forceIsa} cols=${cols}`);
      const big = x.map((v) => v + 1000);
      cpu.softmax(big, big, { rows: ROWS, cols, forceIsa });
      check(big, rowsRef(x, cols, softmax), 1e-6, 1e-4, `softmax +1000 in place ${forceIsa} cols=${cols}`);
    }
  }
});

test('layerNorm, rmsNorm and l2Normalize match the reference', () => {
  for (const forceIsa of isas) {
    for (const cols of WIDTHS) {
      const x = random(30 + cols, ROWS * cols).map((v, i) => v + (i % 5)), out = new Float32Array(x.length);
      const gamma = random(31 + cols, cols), beta = random(32 + cols, cols);
      const label = `${forceIsa} cols=${cols}`;
      cpu.layerNorm(x, gamma, beta, out, { rows: ROWS, cols, eps: 1e-5, forceIsa });
      const ln = (row: number[]) => {
        const mean = row.reduce((p, q) => p + q, 0) / cols;
        const v = row.reduce((p, q) => p + (q - mean) ** 2, 0) / cols;
        return row.map((q, j) => ((q - mean) / Math.sqrt(v + Math.fround(1e-5))) * gamma[j]! + beta[j]!);
      };
      check(out, rowsRef(x, cols, ln), 2e-5, 2e-5, `layerNorm ${label}`);
      cpu.rmsNorm(x, gamma, out, { rows: ROWS, cols, eps: 1e-6, forceIsa });
      const rms = (row: number[]) => {
        const r = 1 / Math.sqrt(row.reduce((p, q) => p + q * q, 0) / cols + Math.fround(1e-6));
        return row.map((q, j) => q * r * gamma[j]!);
      };
      check(out, rowsRef(x, cols, rms), 2e-5, 2e-5, `rmsNorm ${label}`);
      cpu.l2Normalize(x, out, { rows: ROWS, cols, forceIsa });
      const l2 = (row: number[]) => {
        const n = Math.max(Math.sqrt(row.reduce((p, q) => p + q * q, 0)), Math.fround(1e-12));
        return row.map((q) => q / n);
      };
      check(out, rowsRef(x, cols, l2), 1e-6, 1e-5, `l2Normalize ${label}`);
    }
    const zeros = new Float32Array(7), out = new Float32Array(7).fill(Number.NaN);
    cpu.l2Normalize(zeros, out, { rows: 1, cols: 7, forceIsa });
    check(out, zeros, 0, 0, `l2Normalize of zeros ${forceIsa}`);
  }
});

test('embedding gathers rows', () => {
  for (const hidden of WIDTHS) {
    const vocab = 11, table = random(40 + hidden, vocab * hidden);
    const ids = Int32Array.of(3, 0, 10, 3, 7);
    const out = new Float32Array(ids.length * hidden);
    cpu.embedding(table, ids, out, { vocab, hidden });
    const want = Array.from(ids).flatMap((id) => Array.from(table.subarray(id * hidden, (id + 1) * hidden)));
    check(out, want, 0, 0, `embedding hidden=${hidden}`);
  }
});

test('meanPool averages the unmasked positions', () => {
  for (const forceIsa of isas) {
    for (const hidden of WIDTHS) {
      const batch = ROWS, seq = 5, x = random(50 + hidden, batch * seq * hidden);
      const mask = Int32Array.from({ length: batch * seq }, (_, i) => (i < seq ? 1 : i < 2 * seq ? Number(i % 3 === 0) : 0));
      const out = new Float32Array(batch * hidden).fill(Number.NaN);
      cpu.meanPool(x, mask, out, { batch, seq, hidden, forceIsa });
      const want: number[] = [];
      for (let b = 0; b < batch; b++) {
        for (let h = 0; h < hidden; h++) {
          let s = 0, k = 0;
          for (let t = 0; t < seq; t++) if (mask[b * seq + t]) (s += x[(b * seq + t) * hidden + h]!), k++;
          want.push(k ? s / k : 0);
        }
      }
      check(out, want, 1e-6, 1e-5, `meanPool ${forceIsa} hidden=${hidden}`);
    }
  }
});

// Reference casts: the nearest value with `mant` stored bits, ties to even, in float64.
function roundTo(v: number, mant: number, minExp: number, max: number): number {
  const a = Math.abs(v);
  if (a === 0 || !Number.isFinite(a)) return v;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, minExp) - mant), q = a / ulp, f = Math.floor(q), d = q - f;
  const r = (d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f) * ulp;
  return Math.sign(v) * (r > max ? Infinity : r) || (v < 0 ? -0 : 0);
}
function decodeF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}
function decodeBf16(h: number): number {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;
}

test('f16 and bf16 casts round to nearest even and decode every pattern', () => {
  const rand = mulberry32(77), n = 4099;
  const src = new Float32Array(n);
  const bits = new Uint32Array(src.buffer);
  for (let i = 0; i < n; i++) {
    if (i % 2) bits[i] = Math.floor(rand() * 2 ** 32);
    else src[i] = (rand() * 2 - 1) * 2 ** Math.floor(rand() * 44 - 28);
  }
  // Specials, overflow edges, f16 subnormals and exact ties (both parities) for f16 and bf16.
  src.set([0, -0, Infinity, -Infinity, NaN, 65504, 65520, 65519.99, 2 ** -25, 2 ** -24 * 1.5, 2 ** -14 * 0.999,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, -(2 ** -24) * 2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.3961e38], 0);
  bits.set([0x7fc00001, 0xff800001, 0x00000001, 0x807fffff, 0x7f7fffff], 20);
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  for (const forceIsa of isas) {
    const h = new Uint16Array(n), back = new Float32Array(65536);
    for (const [kind, to, from, decode, mant, minExp, max] of [
      ['f16', cpu.castF32ToF16, cpu.castF16ToF32, decodeF16, 10, -14, 65504],
      ['bf16', cpu.castF32ToBf16, cpu.castBf16ToF32, decodeBf16, 7, -126, (2 - 2 ** -7) * 2 ** 127],
    ] as const) {
      to(src, h, { forceIsa });
      for (let i = 0; i < n; i++) {
        const got = decode(h[i]!), want = roundTo(src[i]!, mant, minExp, max);
        const ok = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
        assert.ok(ok, `${kind} ${forceIsa}: ${src[i]} → ${got}, want ${want}`);
      }
      from(all, back, { forceIsa });
      for (let i = 0; i < 65536; i++) {
        const want = decode(i), got = back[i]!;
        assert.ok(Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want), `${kind} decode ${forceIsa} ${i}`);
      }
    }
  }
});

test('invalid arguments throw INVALID_ARGUMENT naming the op and operand', () => {
  const f = (n: number) => new Float32Array(n);
  const shared = f(20);
  const cases: [() => void, RegExp][] = [
    [() => cpu.add(f(5), f(6), f(6), { rows: 2, cols: 3 }), /^add: a has 5 elements, rows\*cols needs 6/],
    [() => cpu.mul(f(6), f(2), f(6), { rows: 2, cols: 3, broadcast: true }), /^mul: b has 2 elements, cols needs 3/],
    [() => cpu.add(f(6), f(6), f(6), { rows: 2, cols: -3 }), /^add: options\.cols/],
    [() => cpu.relu(new Float64Array(3) as unknown as Float32Array, f(3)), /^relu: x must be a Float32Array/],
    [() => cpu.silu(f(4), f(3)), /^silu: out has 3 elements/],
    [() => cpu.gelu(f(4), f(4), { approximate: 'fast' as 'erf' }), /^gelu: options\.approximate/],
    [() => cpu.scale(f(4), f(4), { alpha: Number.NaN }), /^scale: options\.alpha/],
    [() => cpu.softmax(shared.subarray(0, 6), shared.subarray(2, 8), { rows: 2, cols: 3 }), /^softmax: out must be the same array as x/],
    [() => cpu.layerNorm(f(6), f(2), f(3), f(6), { rows: 2, cols: 3 }), /^layerNorm: gamma has 2 elements/],
    [() => cpu.layerNorm(f(6), f(3), f(2), f(6), { rows: 2, cols: 3 }), /^layerNorm: beta has 2 elements/],
    [() => cpu.rmsNorm(f(6), f(3), f(6), { rows: 2, cols: 3, eps: 0 }), /^rmsNorm: options\.eps/],
    [() => cpu.l2Normalize(f(6), f(6), { rows: 2, cols: 3, forceIsa: 'mmx' as CpuOpsIsa }), /^l2Normalize: options\.forceIsa/],
    [() => cpu.embedding(f(6), Int32Array.of(0, 2), f(6), { vocab: 2, hidden: 3 }), /^embedding: ids\[1\] = 2 is outside/],
    [() => cpu.embedding(f(6), Int32Array.of(-1), f(3), { vocab: 2, hidden: 3 }), /^embedding: ids\[0\] = -1/],
    [() => cpu.embedding(f(6), f(1) as unknown as Int32Array, f(3), { vocab: 2, hidden: 3 }), /^embedding: ids must be an Int32Array/],
    [() => cpu.meanPool(f(12), new Int32Array(3), f(4), { batch: 2, seq: 2, hidden: 3 }), /^meanPool: mask has 3 elements/],
    [() => cpu.meanPool(shared.subarray(0, 12), new Int32Array(4), shared.subarray(6, 12), { batch: 2, seq: 2, hidden: 3 }), /^meanPool: out must not overlap x/],
    [() => cpu.castF32ToF16(f(4), new Uint16Array(3)), /^castF32ToF16: dst has 3 elements/],
    [() => cpu.castF16ToF32(f(4) as unknown as Uint16Array, f(4)), /^castF16ToF32: src must be a Uint16Array/],
  ];
  for (const [fn, message] of cases) {
    assert.throws(fn, (err: unknown) => isCaphostError(err, ErrorCode.INVALID_ARGUMENT) && message.test((err as Error).message), String(message));
  }
});
