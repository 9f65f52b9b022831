/**
 * Plain float64 TypeScript references for the device op set, written from the definitions in
 * native/include/caphost_backend.h and sharing no code with any backend. Arrays are flat and
 * row-major; shapes are passed alongside.
 */
import assert from 'node:assert/strict';

/** Fails naming the first element of `got` that is neither equal to `want`'s nor within atol + rtol·|want|. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number }, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (g !== w && !(Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w))) {
      assert.fail(`${what}: element ${i} is ${g}, reference ${w} (atol ${tol.atol}, rtol ${tol.rtol})`);
    }
  }
}

export function erf(x: number): number {
  // Abramowitz & Stegun 7.1.28 is too coarse; this is the complementary error function of
  // Numerical Recipes (erfcc, fractional error < 1.2e-7), good to well below f32 tolerance.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export const geluErf = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
export const relu = (x: number): number => (x > 0 ? x : 0);
export const silu = (x: number): number => x / (1 + Math.exp(-x));

export interface MatmulRef {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  sharedB: boolean;
  alpha: number;
  bias?: ArrayLike<number>;
  activation: 'none' | 'relu' | 'gelu' | 'gelu_tanh';
}

export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, p: MatmulRef): Float64Array {
  const out = new Float64Array(p.batch * p.m * p.n);
  const act = p.activation === 'relu' ? relu : p.activation === 'gelu' ? geluErf : p.activation === 'gelu_tanh' ? geluTanh : (x: number) => x;
  for (let s = 0; s < p.batch; s++) {
    const ao = s * p.m * p.k, bo = p.sharedB ? 0 : s * p.k * p.n;
    for (let i = 0; i < p.m; i++) {
      for (let j = 0; j < p.n; j++) {
        let acc = 0;
        for (let q = 0; q < p.k; q++) {
          const av = a[ao + (p.transA ? q * p.m + i : i * p.k + q)]!;
          const bv = b[bo + (p.transB ? j * p.k + q : q * p.n + j)]!;
          acc += av * bv;
        }
        out[s * p.m * p.n + i * p.n + j] = act(p.alpha * acc + (p.bias ? p.bias[j]! : 0));
      }
    }
  }
  return out;
}

export function rows(x: ArrayLike<number>, cols: number, fn: (row: number[]) => number[]): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r * cols < x.length; r++) {
    const row = Array.from({ length: cols }, (_, c) => x[r * cols + c]!);
    out.set(fn(row), r * cols);
  }
  return out;
}

export function softmaxRow(row: number[]): number[] {
  const mx = Math.max(...row);
  const e = row.map((v) => Math.exp(v - mx));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

export function layerNormRow(row: number[], gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): number[] {
  const mean = row.reduce((s, v) => s + v, 0) / row.length;
  const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
  return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * gamma[i]! + beta[i]!);
}

export function rmsNormRow(row: number[], gamma: ArrayLike<number>, eps: number): number[] {
  const ms = row.reduce((s, v) => s + v * v, 0) / row.length;
  return row.map((v, i) => (v / Math.sqrt(ms + eps)) * gamma[i]!);
}

export function l2NormRow(row: number[], eps: number): number[] {
  const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
  return row.map((v) => v / Math.max(norm, eps));
}

export function embedding(table: ArrayLike<number>, hidden: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * hidden);
  for (let i = 0; i < ids.length; i++) for (let h = 0; h < hidden; h++) out[i * hidden + h] = table[ids[i]! * hidden + h]!;
  return out;
}

export interface AttentionRef {
  batch: number;
  seqQ: number;
  seqK: number;
  heads: number;
  headDim: number;
  valueDim: number;
  scale: number;
  causal: boolean;
  mask?: ArrayLike<number>;
}

export function attention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, p: AttentionRef): Float64Array {
  const wq = p.heads * p.headDim, wv = p.heads * p.valueDim;
  const out = new Float64Array(p.batch * p.seqQ * wv);
  for (let b = 0; b < p.batch; b++) {
    for (let h = 0; h < p.heads; h++) {
      for (let i = 0; i < p.seqQ; i++) {
        const scores: number[] = [];
        const keep: boolean[] = [];
        for (let j = 0; j < p.seqK; j++) {
          let dot = 0;
          for (let d = 0; d < p.headDim; d++) dot += q[(b * p.seqQ + i) * wq + h * p.headDim + d]! * k[(b * p.seqK + j) * wq + h * p.headDim + d]!;
          scores.push(dot * p.scale);
          keep.push((!p.causal || j <= i + (p.seqK - p.seqQ)) && (p.mask === undefined || p.mask[b * p.seqK + j] !== 0));
        }
        if (!keep.some(Boolean)) continue; // a fully masked row gives zeros
        const visible = scores.filter((_, j) => keep[j]);
        const mx = Math.max(...visible);
        const e = scores.map((s, j) => (keep[j] ? Math.exp(s - mx) : 0));
        const sum = e.reduce((s, x) => s + x, 0);
        for (let d = 0; d < p.valueDim; d++) {
          let acc = 0;
          for (let j = 0; j < p.seqK; j++) acc += (e[j]! / sum) * v[(b * p.seqK + j) * wv + h * p.valueDim + d]!;
          out[(b * p.seqQ + i) * wv + h * p.valueDim + d] = acc;
        }
      }
    }
  }
  return out;
}

export function meanPool(x: ArrayLike<number>, mask: ArrayLike<number>, batch: number, seq: number, hidden: number): Float64Array {
  const out = new Float64Array(batch * hidden);
  for (let b = 0; b < batch; b++) {
    let used = 0;
    for (let s = 0; s < seq; s++) {
      if (mask[b * seq + s] === 0) continue;
      used++;
      for (let h = 0; h < hidden; h++) out[b * hidden + h]! += x[(b * seq + s) * hidden + h]!;
    }
    if (used > 0) for (let h = 0; h < hidden; h++) out[b * hidden + h]! /= used;
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of x, round to nearest even (from the definition, via exponent and mantissa). */
export function toF16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const v = Math.abs(f32[0]!);
  if (Number.isNaN(v)) return sign | 0x7e00;
  if (v >= 65520) return sign | 0x7c00; // rounds to infinity
  if (v < 2 ** -24 * 0.5) return sign; // rounds to zero (ties at exactly half go to even: zero)
  let e = Math.floor(Math.log2(v));
  if (2 ** e > v) e--;
  if (2 ** (e + 1) <= v) e++;
  const sub = e < -14;
  const quantum = sub ? 2 ** -24 : 2 ** (e - 10);
  let q = v / quantum;
  const fl = Math.floor(q);
  const frac = q - fl;
  q = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const value = q * quantum;
  if (value >= 65520) return sign | 0x7c00;
  if (value < 2 ** -14) return sign | Math.round(value / 2 ** -24);
  let ee = Math.floor(Math.log2(value));
  if (2 ** ee > value) ee--;
  const mant = Math.round(value / 2 ** ee * 1024) - 1024;
  return sign | ((ee + 15) << 10) | mant;
}

export function fromF16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

export function toBf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if (Number.isNaN(f32[0]!)) return ((bits >>> 16) | 0x40) & 0xffff;
  const upper = bits >>> 16, lower = bits & 0xffff;
  const up = lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1);
  return (upper + (up ? 1 : 0)) & 0xffff;
}

export function fromBf16Bits(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}
