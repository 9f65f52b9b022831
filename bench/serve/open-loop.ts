/**
 * An open-loop load generator: requests arrive at Poisson times at a fixed rate whatever the
 * server does, and each latency runs from the request's scheduled arrival, so a server that
 * stalls the generator (a blocked event loop) is charged for it (no coordinated omission).
 */
import { mulberry32 } from '../../test/support/prng.js';

export interface LoadResult {
  readonly offered: number;
  /** Completed requests per second over the run (from the first arrival to the last completion). */
  readonly achieved: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly sent: number;
  /** Requests that failed or did not finish within the drain time (counted as infinite latency). */
  readonly failed: number;
}

export async function openLoop(rate: number, durationMs: number, send: (i: number) => Promise<unknown>, drainMs = 10_000): Promise<LoadResult> {
  const random = mulberry32(rate * 7919);
  const arrivals: number[] = [];
  for (let t = 0; ; ) {
    t += (-Math.log(1 - random()) / rate) * 1000;
    if (t >= durationMs) break;
    arrivals.push(t);
  }
  const latencies = new Float64Array(arrivals.length).fill(Infinity);
  let failed = 0;
  let finished = 0;
  let lastDone = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    let next = 0;
    const tick = (): void => {
      const now = performance.now() - start;
      while (next < arrivals.length && arrivals[next]! <= now) {
        const i = next++;
        const at = arrivals[i]!;
        pending.push(
          send(i).then(
            () => {
              const done = performance.now() - start;
              latencies[i] = done - at;
              lastDone = Math.max(lastDone, done);
              finished++;
            },
            () => {
              failed++;
            },
          ),
        );
      }
      if (next >= arrivals.length) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, arrivals[next]! - (performance.now() - start))));
    };
    tick();
  });
  await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, drainMs).unref())]);
  const sorted = Float64Array.from(latencies).sort();
  // Nearest rank: a request that never finished is an infinite latency, not an interpolation.
  const percentile = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  const span = Math.max(lastDone, durationMs) / 1000;
  return {
    offered: rate,
    achieved: finished / span,
    p50Ms: percentile(0.5),
    p99Ms: percentile(0.99),
    sent: arrivals.length,
    failed: failed + (arrivals.length - finished - failed),
  };
}
