/**
 * Scope `core`: caphost thread-worker calls against piscina (default, and with
 * atomics disabled) and a bare MessageChannel echo, one worker each, measured
 * the same way in the same process. Baselines run first so that their figures
 * are printed even when caphost fails; caphost failing still fails the bench.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { VERIFY_TIMEOUT_MS, settleWithin, busyLatency, bestThroughput, idleCpuPercent } from '../measure.js';
import { sampleLatency, summarize } from '../stats.js';
import { addFigure, newSuite, SuiteFailure, type Metric, type RunContext, type SuiteResult, type Target } from '../suite.js';
import type { Contender } from './contender.js';
import { startChannel } from './channel.js';
import { startPiscina } from './piscina.js';

const METRICS: Metric[] = [
  { key: 'seq64.busy.p50', label: '64 B call p50, calls keep coming', unit: 'µs', better: 'lower' },
  { key: 'seq64.busy.p99', label: '64 B call p99, calls keep coming', unit: 'µs', better: 'lower' },
  { key: 'seq64.idle.p50', label: '64 B call p50, from idle', unit: 'µs', better: 'lower' },
  { key: 'seq64.idle.p99', label: '64 B call p99, from idle', unit: 'µs', better: 'lower' },
  { key: 'throughput.best', label: 'throughput, best in-flight', unit: 'calls/s', better: 'higher' },
  { key: 'handoff1MiB.p50', label: '1 MiB Float32Array hand-off p50', unit: 'µs', better: 'lower' },
  { key: 'handoff1MiB.p99', label: '1 MiB Float32Array hand-off p99', unit: 'µs', better: 'lower' },
  { key: 'idleCpu.4workers', label: 'idle CPU, 4 idle workers', unit: '% core', better: 'lower' },
];

const TARGETS: Target[] = [
  { metric: 'seq64.busy.p50', subject: 'caphost', op: '<=', threshold: 2 },
  { metric: 'seq64.idle.p50', subject: 'caphost', op: '<=', threshold: 30 },
  { metric: 'throughput.best', subject: 'caphost', op: '>=', threshold: 2_000_000 },
  { metric: 'throughput.best', subject: 'caphost', op: '>=', threshold: 20, against: 'piscina' },
  { metric: 'handoff1MiB.p50', subject: 'caphost', op: '<=', threshold: 5 },
  { metric: 'idleCpu.4workers', subject: 'caphost', op: '<', threshold: 1 },
];

/** Measurement order; caphost is loaded lazily so a broken build cannot stop the baselines. */
const CONTENDERS: Array<[string, () => Promise<Contender>]> = [
  ['piscina', () => startPiscina('piscina')],
  ['piscina-atomics-off', () => startPiscina('piscina-atomics-off', { atomics: 'disabled' })],
  ['message-channel', startChannel],
  ['caphost', async () => (await import('./caphost.js')).startCaphost()],
];

const DURATIONS = {
  full: { latencyMs: 2000, warmupMs: 300, idleSamples: 1000, tputMs: 1000, tputWarmupMs: 200, idleCpuMs: 10_000 },
  quick: { latencyMs: 250, warmupMs: 50, idleSamples: 100, tputMs: 200, tputWarmupMs: 50, idleCpuMs: 2_000 },
};

/** Long enough for every contender's worker to give up spinning and park. */
const IDLE_GAP_MS = 2;

export async function runCore(ctx: RunContext): Promise<SuiteResult> {
  const d = ctx.quick ? DURATIONS.quick : DURATIONS.full;
  const suite = newSuite({
    suite: 'core',
    title: 'core: one worker vs one worker, 64 B echo and 1 MiB hand-off',
    subjects: ['caphost', 'piscina', 'piscina-atomics-off', 'message-channel'],
    baselines: ['piscina', 'message-channel'],
    metrics: METRICS,
    targets: TARGETS,
  });
  const add = (metric: string, subject: string, value: number, detail?: Record<string, unknown>): void =>
    addFigure(suite, metric, subject, value, detail);

  try {
    for (const [subject, start] of CONTENDERS) {
      ctx.log(`core: ${subject}: starting`);
      const c = await start();
      try {
        await settleWithin(c.verify(), VERIFY_TIMEOUT_MS, `${subject}: first calls did not settle`);

        ctx.log(`core: ${subject}: sequential latency, calls keep coming`);
        const busy = await busyLatency(c.call64, { timeMs: d.latencyMs, warmupMs: d.warmupMs });
        add('seq64.busy.p50', subject, busy.p50, { samples: busy.samples });
        add('seq64.busy.p99', subject, busy.p99, { samples: busy.samples });

        ctx.log(`core: ${subject}: sequential latency from idle (${IDLE_GAP_MS} ms gaps)`);
        const idle = summarize(await sampleLatency(c.call64, { samples: d.idleSamples, gapMs: IDLE_GAP_MS, warmup: 20 }));
        add('seq64.idle.p50', subject, idle.p50, { samples: idle.n, gapMs: IDLE_GAP_MS });
        add('seq64.idle.p99', subject, idle.p99, { samples: idle.n, gapMs: IDLE_GAP_MS });

        ctx.log(`core: ${subject}: throughput with calls in flight`);
        const tput = await bestThroughput(c.call64, { durationMs: d.tputMs, warmupMs: d.tputWarmupMs });
        add('throughput.best', subject, tput.callsPerSec, { inFlight: tput.inFlight, byInFlight: tput.byInFlight });

        ctx.log(`core: ${subject}: 1 MiB hand-off`);
        const hand = await busyLatency(c.handoff, { timeMs: d.latencyMs, warmupMs: d.warmupMs });
        add('handoff1MiB.p50', subject, hand.p50, { samples: hand.samples });
        add('handoff1MiB.p99', subject, hand.p99, { samples: hand.samples });
      } finally {
        await c.close();
      }
    }

    // Alone in the process: every other contender's threads are gone by now.
    ctx.log(`core: caphost: idle CPU with 4 workers over ${d.idleCpuMs / 1000} s`);
    await sleep(200);
    const { idleCpuWithWorkers } = await import('./caphost.js');
    add('idleCpu.4workers', 'caphost', await idleCpuWithWorkers(4, d.idleCpuMs, idleCpuPercent), {
      windowMs: d.idleCpuMs,
      workers: 4,
    });
  } catch (err) {
    throw new SuiteFailure(suite, err);
  }

  const bestAt = suite.figures
    .filter((f) => f.metric === 'throughput.best')
    .map((f) => `${f.subject} ${String(f.detail?.['inFlight'])}`);
  suite.notes.push(
    `best throughput at calls in flight: ${bestAt.join(', ')}`,
    `durations: ${ctx.quick ? 'quick (smoke run, not figures to quote)' : 'full'}`,
    'speedup > 1 means caphost is better than the baseline (lower latency or higher throughput)',
  );
  return suite;
}
