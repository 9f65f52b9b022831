/**
 * Scope `process`: a caphost `strategy: 'process'` worker against a
 * Unix-domain-socket echo and child_process.fork + process.send, one child
 * process each, measured the same way in the same process and run. Baselines
 * run first so that their figures are printed even when caphost fails;
 * caphost failing still fails the bench. Then caphost alone: start time of a
 * process worker vs a thread worker (and the sandbox step inside it), and idle
 * CPU of 4 process workers counted in the controller and in the children.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { VERIFY_TIMEOUT_MS, settleWithin, busyLatency, bestThroughput } from '../measure.js';
import { addFigure, newSuite, SuiteFailure, type Metric, type RunContext, type SuiteResult, type Target } from '../suite.js';
import type { Contender } from './contender.js';
import { startUnixSocket } from './unix-socket.js';
import { startForkIpc } from './fork-ipc.js';

const METRICS: Metric[] = [
  { key: 'seq64.busy.p50', label: '64 B call p50, calls keep coming', unit: 'µs', better: 'lower' },
  { key: 'seq64.busy.p99', label: '64 B call p99, calls keep coming', unit: 'µs', better: 'lower' },
  { key: 'throughput.best', label: 'throughput, best in-flight', unit: 'calls/s', better: 'higher' },
  { key: 'start.process', label: 'Controller.start, 1 process worker (median)', unit: 'ms', better: 'lower' },
  { key: 'start.thread', label: 'Controller.start, 1 thread worker (median)', unit: 'ms', better: 'lower' },
  { key: 'start.overThread', label: 'process start minus thread start', unit: 'ms', better: 'lower' },
  { key: 'start.sandbox', label: 'sandbox setup in a process worker start (median)', unit: 'ms', better: 'lower' },
  { key: 'idleCpu.4procWorkers', label: 'idle CPU, 4 idle process workers (controller + children)', unit: '% core', better: 'lower' },
  { key: 'idleCpu.4procWorkers.controller', label: 'idle CPU, same window, controller process only', unit: '% core', better: 'lower' },
];

const TARGETS: Target[] = [
  { metric: 'seq64.busy.p50', subject: 'caphost', op: '<=', threshold: 3 },
  { metric: 'throughput.best', subject: 'caphost', op: '>=', threshold: 1_000_000 },
  { metric: 'start.sandbox', subject: 'caphost', op: '<=', threshold: 20 },
  { metric: 'idleCpu.4procWorkers', subject: 'caphost', op: '<', threshold: 1 },
];

/** Measurement order; caphost is loaded lazily so a broken build cannot stop the baselines. */
const CONTENDERS: Array<[string, () => Promise<Contender>]> = [
  ['unix-socket', startUnixSocket],
  ['fork-ipc', startForkIpc],
  ['caphost', async () => (await import('./caphost.js')).startCaphostProcess()],
];

const DURATIONS = {
  full: { latencyMs: 2000, warmupMs: 300, tputMs: 1000, tputWarmupMs: 200, startRuns: 5, idleCpuMs: 10_000 },
  quick: { latencyMs: 250, warmupMs: 50, tputMs: 200, tputWarmupMs: 50, startRuns: 2, idleCpuMs: 2_000 },
};

export async function runProcess(ctx: RunContext): Promise<SuiteResult> {
  const d = ctx.quick ? DURATIONS.quick : DURATIONS.full;
  const suite = newSuite({
    suite: 'process',
    title: 'process: one child process each, 64 B echo across processes',
    subjects: ['caphost', 'unix-socket', 'fork-ipc'],
    baselines: ['unix-socket', 'fork-ipc'],
    metrics: METRICS,
    targets: TARGETS,
  });
  const add = (metric: string, subject: string, value: number, detail?: Record<string, unknown>): void =>
    addFigure(suite, metric, subject, value, detail);

  try {
    for (const [subject, start] of CONTENDERS) {
      ctx.log(`process: ${subject}: starting`);
      const c = await start();
      try {
        await settleWithin(c.verify(), VERIFY_TIMEOUT_MS, `${subject}: first calls did not settle`);

        ctx.log(`process: ${subject}: sequential latency, calls keep coming`);
        const busy = await busyLatency(c.call64, { timeMs: d.latencyMs, warmupMs: d.warmupMs });
        add('seq64.busy.p50', subject, busy.p50, { samples: busy.samples });
        add('seq64.busy.p99', subject, busy.p99, { samples: busy.samples });

        ctx.log(`process: ${subject}: throughput with calls in flight`);
        const tput = await bestThroughput(c.call64, { durationMs: d.tputMs, warmupMs: d.tputWarmupMs });
        add('throughput.best', subject, tput.callsPerSec, { inFlight: tput.inFlight, byInFlight: tput.byInFlight });
      } finally {
        await c.close();
      }
    }

    const { measureStartTimes, idleCpuWithProcessWorkers } = await import('./caphost.js');
    ctx.log(`process: caphost: start time, process vs thread worker (${d.startRuns} each)`);
    const st = await measureStartTimes(d.startRuns);
    add('start.process', 'caphost', st.processMs, { runs: st.runs, all: st.processAll });
    add('start.thread', 'caphost', st.threadMs, { runs: st.runs, all: st.threadAll });
    add('start.overThread', 'caphost', st.processMs - st.threadMs, { runs: st.runs });
    if (st.sandboxMs !== null) add('start.sandbox', 'caphost', st.sandboxMs, { runs: st.sandboxAll.length, all: st.sandboxAll });

    // Alone in the process: every other contender's child is gone by now.
    ctx.log(`process: caphost: idle CPU with 4 process workers over ${d.idleCpuMs / 1000} s`);
    await sleep(200);
    const idle = await idleCpuWithProcessWorkers(4, d.idleCpuMs);
    add('idleCpu.4procWorkers', 'caphost', idle.totalPercent, {
      windowMs: d.idleCpuMs,
      workers: 4,
      controllerPercent: idle.controllerPercent,
      childrenPercent: idle.childrenPercent,
      childProcesses: idle.children,
    });
    add('idleCpu.4procWorkers.controller', 'caphost', idle.controllerPercent, { windowMs: d.idleCpuMs, workers: 4 });
    if (st.sandboxMs === null) {
      suite.notes.push('no sandbox time: the worker did not log "is sandboxed" with fields.sandbox.ms at debug level');
    }
  } catch (err) {
    throw new SuiteFailure(suite, err);
  }

  const bestAt = suite.figures
    .filter((f) => f.metric === 'throughput.best')
    .map((f) => `${f.subject} ${String(f.detail?.['inFlight'])}`);
  suite.notes.push(
    `best throughput at calls in flight: ${bestAt.join(', ')}`,
    'start: Controller.start until the worker is ready (spawn, boot node, map the channel, sandbox, load the module); ' +
      'process minus thread is mostly booting a second node, not the sandbox; the sandbox target is on the Landlock + seccomp step the worker times itself',
    'idle CPU: controller by process.cpuUsage(), workers by utime+stime from /proc/<pid>/stat of its child processes, same window',
    'fork-ipc sends the bytes as base64 over the default JSON serialization (faster here than "advanced" with a Uint8Array); unix-socket uses 4-byte length-prefixed frames, writes corked per tick',
    `durations: ${ctx.quick ? 'quick (smoke run, not figures to quote)' : 'full'}`,
    'speedup > 1 means caphost is better than the baseline (lower latency or higher throughput)',
  );
  return suite;
}
