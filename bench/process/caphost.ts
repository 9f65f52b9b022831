/**
 * caphost as a process-suite contender: one `strategy: 'process'` worker
 * (default sandbox profile 'strict') serving echo.bytes@1 from the same echo
 * fixture as the core suite. The module lives under dist/bench/fixtures, which
 * Landlock lets the child read. Also: start time of a process worker against a
 * thread worker, the sandbox step's own time as the worker reports it, and
 * idle CPU with 4 process workers counted in the controller and its children.
 */
import { Controller } from '../../src/index.js';
import type { Logger } from '../../src/logger.js';
import { assertEcho, makePayload, type Contender } from './contender.js';
import { childrenCpuSeconds } from './child-cpu.js';
import { median } from '../stats.js';

const CAPABILITY = 'echo.bytes@1';
const ECHO_WORKER = new URL('../fixtures/echo-worker.js', import.meta.url);

type Strategy = 'process' | 'thread';

/** Drops records below warn, but keeps the worker's "is sandboxed" report. */
function capturingLogger(sandboxMs: number[]): Logger {
  const print = (lvl: string) => (message: string, fields?: Record<string, unknown>) => {
    process.stderr.write(`[bench caphost ${lvl}] ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);
  };
  return {
    debug(message, fields) {
      const ms = (fields?.['sandbox'] as { ms?: unknown } | undefined)?.ms;
      if (/is sandboxed/.test(message) && typeof ms === 'number') sandboxMs.push(ms);
    },
    info() {},
    warn: print('warn'),
    error: print('error'),
  };
}

function startController(strategy: Strategy, replicas: number, logger: Logger | 'warn' = 'warn'): ReturnType<typeof Controller.start> {
  return Controller.start({ workers: [{ module: ECHO_WORKER, strategy, replicas }], logger });
}

export async function startCaphostProcess(): Promise<Contender> {
  const subject = 'caphost';
  const controller = await startController('process', 1);
  const small = { data: makePayload() };
  return {
    subject,
    call64: () => controller.call(CAPABILITY, small),
    async verify() {
      const out = (await controller.call(CAPABILITY, small)) as { data: Uint8Array };
      assertEcho(subject, small.data, out.data);
    },
    close: () => controller.close(),
  };
}

export interface StartTimes {
  /** Median wall time of Controller.start, ms, per strategy. */
  processMs: number;
  threadMs: number;
  /** Median of the sandbox step (Landlock + seccomp) as the process worker timed it, ms. */
  sandboxMs: number | null;
  runs: number;
  processAll: number[];
  threadAll: number[];
  sandboxAll: number[];
}

/**
 * Controller.start with one worker until it resolves (the worker is ready:
 * booted, sandboxed, module loaded), then one call, then close; alternating
 * strategies so drift hits both alike. One untimed start of each first.
 */
export async function measureStartTimes(runs: number): Promise<StartTimes> {
  const sandboxAll: number[] = [];
  const logger = capturingLogger(sandboxAll);
  const times: Record<Strategy, number[]> = { process: [], thread: [] };
  const input = { data: makePayload() };
  for (let i = -1; i < runs; i++) {
    for (const strategy of ['process', 'thread'] as const) {
      const before = sandboxAll.length;
      const t0 = process.hrtime.bigint();
      const c = await startController(strategy, 1, logger);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      try {
        await c.call(CAPABILITY, input);
      } finally {
        await c.close();
      }
      if (i < 0) {
        sandboxAll.length = before; // warm-up start: not counted
        continue;
      }
      times[strategy].push(ms);
    }
  }
  return {
    processMs: median(times.process),
    threadMs: median(times.thread),
    sandboxMs: sandboxAll.length ? median(sandboxAll) : null,
    runs,
    processAll: times.process.map((x) => +x.toFixed(2)),
    threadAll: times.thread.map((x) => +x.toFixed(2)),
    sandboxAll: sandboxAll.map((x) => +x.toFixed(3)),
  };
}

export interface IdleCpu {
  /** Controller process plus every worker process, % of one core. */
  totalPercent: number;
  controllerPercent: number;
  childrenPercent: number;
  children: number;
}

/**
 * CPU with `replicas` idle process workers over `windowMs`, % of one core.
 * process.cpuUsage() covers only the controller; the workers' own CPU comes
 * from /proc/<pid>/stat (utime + stime) of the controller's descendants,
 * sampled at both ends of the same window. A few calls first so every worker
 * has served, then a settle pause so start-up and spin-before-park are over.
 */
export async function idleCpuWithProcessWorkers(replicas: number, windowMs: number): Promise<IdleCpu> {
  const controller = await startController('process', replicas);
  try {
    const input = { data: makePayload() };
    await Promise.all(Array.from({ length: replicas * 4 }, () => controller.call(CAPABILITY, input)));
    await new Promise((r) => setTimeout(r, 500));
    const kids0 = childrenCpuSeconds(process.pid);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, windowMs));
    const cpu = process.cpuUsage(cpu0);
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const kids1 = childrenCpuSeconds(process.pid);
    let kidsS = 0;
    // Only children alive at both ends: a worker that vanished mid-window would be a crash, not idle.
    for (const [pid, s1] of kids1) {
      const s0 = kids0.get(pid);
      if (s0 !== undefined) kidsS += s1 - s0;
    }
    const live = [...kids1.keys()].filter((pid) => kids0.has(pid)).length;
    if (live < replicas) throw new Error(`idle CPU: found ${live} worker processes alive through the window, expected ${replicas}`);
    const controllerPercent = ((cpu.user + cpu.system) / 1e6 / wallS) * 100;
    const childrenPercent = (kidsS / wallS) * 100;
    return { totalPercent: controllerPercent + childrenPercent, controllerPercent, childrenPercent, children: live };
  } finally {
    await controller.close();
  }
}
