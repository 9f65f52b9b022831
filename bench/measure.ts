/**
 * The three ways the suites measure: latency of back-to-back calls (tinybench),
 * throughput with N calls in flight, and process CPU while nothing happens.
 */
import { Bench } from 'tinybench';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LatencyUs {
  p50: number;
  p99: number;
  samples: number;
}

/**
 * Sequential awaits of `fn`, each issued as soon as the previous settles, so
 * the worker never gets the chance to park. tinybench reports milliseconds.
 */
export async function busyLatency(
  fn: () => Promise<unknown>,
  { timeMs, warmupMs }: { timeMs: number; warmupMs: number },
): Promise<LatencyUs> {
  const bench = new Bench({
    time: timeMs,
    warmupTime: warmupMs,
    timestampProvider: 'hrtimeNow',
    throws: true,
  });
  bench.add('call', async () => {
    await fn();
  }, { async: true });
  await bench.run();
  const r = bench.tasks[0]!.result;
  if (r.state !== 'completed') {
    throw new Error(`tinybench task ended ${r.state}${'error' in r ? `: ${r.error.message}` : ''}`);
  }
  return { p50: r.latency.p50 * 1e3, p99: r.latency.p99 * 1e3, samples: r.latency.samplesCount };
}

/**
 * Keeps `inFlight` calls outstanding for `durationMs`: every completion issues
 * the next one at once. Stops issuing at the deadline, waits for the stragglers
 * and divides by the time the last one took to land, so nothing is counted
 * that was not finished inside the measured span.
 */
export async function measureThroughput(
  makeCall: () => Promise<unknown>,
  { inFlight, durationMs }: { inFlight: number; durationMs: number },
): Promise<number> {
  let completed = 0;
  let stop = false;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(durationMs * 1e6));
  const lane = async (): Promise<void> => {
    try {
      while (!stop) {
        await makeCall();
        // Reading the clock on every completion would cost a few % at
        // millions of calls/s; every 64th is fine-grained enough.
        if ((++completed & 63) === 0 && process.hrtime.bigint() >= deadline) stop = true;
      }
    } catch (err) {
      stop = true;
      throw err;
    }
  };
  // allSettled, not all: on a failure no lane may still be calling after we return.
  const settled = await Promise.allSettled(Array.from({ length: inFlight }, lane));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return completed / seconds;
}

export const IN_FLIGHT_LEVELS = [1, 8, 32, 128, 512] as const;

export interface BestThroughput {
  callsPerSec: number;
  inFlight: number;
  byInFlight: Record<string, number>;
}

/** Best calls/s over the in-flight levels; each level gets its own short warm-up. */
export async function bestThroughput(
  makeCall: () => Promise<unknown>,
  { durationMs, warmupMs, levels = IN_FLIGHT_LEVELS }: { durationMs: number; warmupMs: number; levels?: readonly number[] },
): Promise<BestThroughput> {
  const byInFlight: Record<string, number> = {};
  let best = { callsPerSec: 0, inFlight: 0 };
  for (const inFlight of levels) {
    await measureThroughput(makeCall, { inFlight, durationMs: warmupMs });
    const callsPerSec = await measureThroughput(makeCall, { inFlight, durationMs });
    byInFlight[inFlight] = Math.round(callsPerSec);
    if (callsPerSec > best.callsPerSec) best = { callsPerSec, inFlight };
  }
  return { ...best, byInFlight };
}

/**
 * CPU the whole process (every thread: main, workers, GC) burns over a wall
 * window, as % of one core. getrusage is process-wide, so idle workers that
 * spin instead of parking show up here.
 */
export async function idleCpuPercent(windowMs: number): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await sleep(windowMs);
  const cpu = process.cpuUsage(cpu0);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1e3;
  return ((cpu.user + cpu.system) / wallUs) * 100;
}

/** A contender that hangs on its first calls would otherwise hang the whole bench (and CI). */
export const VERIFY_TIMEOUT_MS = 15_000;

/** Rejects with `what` if `p` has not settled within `ms`. */
export async function settleWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
