import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCpuBinding, type CpuIsa, type GemmActivation, type SgemmOptions } from '../../src/device/cpu-binding.js';
import { ErrorCode, isCaphostError } from '../../src/errors.js';
import { mulberry32 } from '../support/prng.js';

const cpu = loadCpuBinding();
const info = cpu.kernelInfo();

function random(rand: () => number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rand() * 2 - 1;
  return out;
}

function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/** Naive float64 triple loop over the same row-major layout. */
function reference(a: Float32Array, b: Float32Array, o: SgemmOptions): Float64Array {
  const { m, n, k } = o;
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[o.transA ? p * m + i : i * k + p]! * b[o.transB ? j * k + p : p * n + j]!;
      if (o.bias) s += o.bias[j]!;
      if (o.activation === 'relu') s = Math.max(s, 0);
      if (o.activation === 'gelu') s = gelu(s);
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Max |got - want| / max(1, |want|) must stay within 1e-4, scaled by k beyond k = 64. */
function check(got: Float32Array, want: Float64Array, k: number, label: string): void {
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
  const tol = 1e-4 * Math.max(1, k / 64);
  assert.ok(worst <= tol, `${label}: max relative error ${worst} > ${tol}`);
}

const sizes: [number, number, number][] = [
  [1, 1, 1], [3, 5, 7], [17, 31, 13], [64, 64, 64], [100, 1, 300], [1, 257, 65], [37, 70, 450],
];

function run(seed: number, m: number, n: number, k: number, extra: Partial<SgemmOptions>) {
  const rand = mulberry32(seed);
  const a = random(rand, m * k), b = random(rand, k * n);
  const options: SgemmOptions = { m, n, k, ...extra };
  const c = new Float32Array(m * n).fill(Number.NaN);
  cpu.sgemm(a, b, c, options);
  return { a, b, c, options };
}

test('kernelInfo names the default ISA and the available ones', () => {
  assert.ok(info.available.includes(info.isa));
  assert.ok(info.available.includes('scalar'));
  assert.equal(info.available[0], info.isa);
});

test('sgemm matches the float64 reference over sizes and transposes', () => {
  let seed = 1;
  for (const [m, n, k] of sizes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const { a, b, c, options } = run(seed++, m, n, k, { transA, transB });
        check(c, reference(a, b, options), k, `${m}x${n}x${k} tA=${transA} tB=${transB}`);
      }
    }
  }
});

test('fused bias and activations match the reference', () => {
  let seed = 100;
  for (const [m, n, k] of sizes) {
    for (const activation of ['none', 'relu', 'gelu'] as GemmActivation[]) {
      const bias = random(mulberry32(seed + 7), n);
      const { a, b, c, options } = run(seed++, m, n, k, { bias, activation, transB: seed % 2 === 0 });
      check(c, reference(a, b, options), k, `${m}x${n}x${k} ${activation}`);
    }
  }
});

test('k = 0 yields act(bias)', () => {
  const c = new Float32Array(6);
  cpu.sgemm(new Float32Array(0), new Float32Array(0), c, { m: 2, n: 3, k: 0, bias: Float32Array.of(-1, 0, 2), activation: 'relu' });
  assert.deepEqual([...c], [0, 0, 2, 0, 0, 2]);
});

test('one and two threads give identical results', () => {
  for (const [m, n, k] of [[130, 77, 300], [3, 700, 50], [64, 64, 64]] as [number, number, number][]) {
    const bias = random(mulberry32(9), n);
    const one = run(42, m, n, k, { bias, activation: 'gelu', threads: 1 }).c;
    const two = run(42, m, n, k, { bias, activation: 'gelu', threads: 2 }).c;
    assert.deepEqual(two, one, `${m}x${n}x${k}`);
  }
});

test('every available ISA, scalar included, agrees with the default and the reference', () => {
  for (const isa of info.available as CpuIsa[]) {
    let seed = 500;
    for (const [m, n, k] of sizes) {
      const bias = random(mulberry32(seed + 3), n);
      const extra = { bias, activation: 'relu' as const, transA: seed % 2 === 1, threads: 2 };
      const forced = run(seed, m, n, k, { ...extra, forceIsa: isa });
      const plain = run(seed++, m, n, k, extra);
      check(forced.c, reference(forced.a, forced.b, forced.options), k, `${isa} ${m}x${n}x${k}`);
      check(forced.c, Float64Array.from(plain.c), k, `${isa} vs ${info.isa} ${m}x${n}x${k}`);
    }
  }
});

test('invalid arguments throw INVALID_ARGUMENT naming the operand', () => {
  const f = (n: number) => new Float32Array(n);
  const cases: [() => void, RegExp][] = [
    [() => cpu.sgemm(f(10), f(12), f(12), { m: 3, n: 3, k: 4 }), /a has 10 elements, m\*k needs 12/],
    [() => cpu.sgemm(f(12), f(11), f(9), { m: 3, n: 3, k: 4 }), /b has 11 elements, k\*n needs 12/],
    [() => cpu.sgemm(f(12), f(12), f(8), { m: 3, n: 3, k: 4 }), /c has 8 elements, m\*n needs 9/],
    [() => cpu.sgemm(f(12), f(12), f(9), { m: 3, n: 3, k: 4, bias: f(2) }), /bias has 2 elements/],
    [() => cpu.sgemm(new Float64Array(12) as unknown as Float32Array, f(12), f(9), { m: 3, n: 3, k: 4 }), /a must be a Float32Array/],
    [() => cpu.sgemm(f(12), f(12), f(9), { m: -1, n: 3, k: 4 }), /options\.m/],
    [() => cpu.sgemm(f(12), f(12), f(9), { m: 3, n: 3, k: 4, activation: 'tanh' as GemmActivation }), /activation/],
    [() => cpu.sgemm(f(12), f(12), f(9), { m: 3, n: 3, k: 4, threads: 0 }), /threads/],
    [() => cpu.sgemm(f(12), f(12), f(9), { m: 3, n: 3, k: 4, forceIsa: 'mmx' as CpuIsa }), /forceIsa/],
  ];
  const shared = f(30);
  cases.push([() => cpu.sgemm(shared.subarray(0, 12), f(12), shared.subarray(10, 19), { m: 3, n: 3, k: 4 }), /overlap/]);
  for (const [fn, message] of cases) {
    assert.throws(fn, (err: unknown) => isCaphostError(err, ErrorCode.INVALID_ARGUMENT) && message.test((err as Error).message));
  }
});
