import { availableParallelism } from 'node:os';
import { loadCoreBinding } from '../native/core-binding.js';

/**
 * How long to spin before parking. Spinning buys sub-microsecond hand-offs while calls keep
 * coming; parking costs a futex wake (~20 µs) but no CPU. The budget follows the gaps actually
 * seen: a gap that a longer spin (up to maxUs) would have covered raises the budget to cover it;
 * a gap beyond maxUs means the peer went idle, and the budget halves.
 */
export class SpinBudget {
  private budget: number;

  constructor(
    private readonly minUs: number,
    private readonly maxUs: number,
  ) {
    this.budget = maxUs;
  }

  get us(): number {
    return this.budget;
  }

  /** Records how long the wait for the peer took, in µs (spinning or parked). */
  observe(gapUs: number): void {
    if (gapUs <= this.maxUs) this.budget = Math.min(this.maxUs, Math.max(this.budget, gapUs * 2 + this.minUs));
    else this.budget = Math.max(this.minUs, this.budget / 2);
  }
}

/**
 * The process may run on one CPU only (a one-CPU container, taskset): there a spin holds the very
 * CPU its peer needs to answer, and every hand-off used to wait out the whole budget.
 */
export const ONE_CPU = availableParallelism() === 1;

/** How often a spin yields its CPU while its caller is busy (the worker's caller behind, the controller with calls in flight). */
export const BUSY_YIELD_US = 20;

/**
 * Spins until `ready()` is true or `us` microseconds pass; never where the process has one CPU
 * (ONE_CPU). The clock is read every 64 polls so that a poll stays a load and a compare.
 *
 * With `yieldEveryUs`, the spin also yields its CPU that often (sched_yield, ~1.5 µs here, at
 * once when no other thread waits for this CPU). Under load a thread woken onto the spinner's CPU
 * otherwise waits until the spinner's time slice ends, and the threads a spinner waits for are
 * exactly the ones that get woken: at 64 HTTP connections on two CPUs, the server's requests/s
 * went 0.82-0.86x -> 1.08x the node:http echo's with the worker and the controller yielding every
 * 20 µs while busy (alternating rounds). A caller waiting on one answer does not yield: a mesh
 * peer's remote p50 went 1.11-1.16x -> 1.19-1.20x raw NATS when the idle worker's spin yielded.
 */
export function spinUntil(ready: () => boolean, us: number, yieldEveryUs = 0): boolean {
  if (ready()) return true;
  if (us <= 0 || ONE_CPU) return false;
  const start = performance.now();
  const end = start + us / 1000;
  const every = yieldEveryUs / 1000;
  let next = yieldEveryUs > 0 ? start + every : Infinity;
  for (;;) {
    for (let i = 0; i < 64; i++) if (ready()) return true;
    const now = performance.now();
    if (now >= end) return ready();
    if (now >= next) {
      (yieldCpu ??= loadCoreBinding().yieldCpu)();
      next = performance.now() + every;
    }
  }
}

let yieldCpu: (() => void) | undefined;
