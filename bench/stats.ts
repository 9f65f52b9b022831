/**
 * Percentiles over latency samples in microseconds, and a sampler for the
 * cases tinybench does not fit: a pause between calls (measuring a worker
 * woken from its parked state) and batching for ops shorter than the timer's
 * own cost, where one sample per call would mostly measure the clock.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Linear interpolation between order statistics; `sorted` must be ascending, q in [0, 1]. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** The median of a few figures (rounds, runs): percentile 0.5 of them. */
export function median(xs: readonly number[]): number {
  return percentile(Float64Array.from(xs).sort(), 0.5);
}

export function summarize(samplesUs: Float64Array): Summary {
  const sorted = Float64Array.from(samplesUs).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

export interface SampleOptions {
  samples: number;
  /** Calls per sample; the sample is their mean. Use >1 only for sub-µs ops. */
  batch?: number;
  /** Pause before each sample, outside the timed window. */
  gapMs?: number;
  /** Untimed calls first, so JIT and lazy start-up do not land in the samples. */
  warmup?: number;
}

/** Sequential samples of `fn` in µs, timed with hrtime.bigint (ns, monotonic). */
export async function sampleLatency(
  fn: () => Promise<unknown>,
  { samples, batch = 1, gapMs = 0, warmup = 0 }: SampleOptions,
): Promise<Float64Array> {
  for (let i = 0; i < warmup; i++) await fn();
  const out = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    if (gapMs > 0) await sleep(gapMs);
    const t0 = process.hrtime.bigint();
    for (let b = 0; b < batch; b++) await fn();
    // Subtract in bigint: absolute hrtime values lose ns precision as doubles.
    out[i] = Number(process.hrtime.bigint() - t0) / 1e3 / batch;
  }
  return out;
}
