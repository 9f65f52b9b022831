import { availableParallelism } from 'node:os';

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

/**
 * Spins until `ready()` is true or `us` microseconds pass; never where the process has one CPU
 * (ONE_CPU). The clock is read every 64 polls so that a poll stays a load and a compare.
 */
export function spinUntil(ready: () => boolean, us: number): boolean {
  if (ready()) return true;
  if (us <= 0 || ONE_CPU) return false;
  const end = performance.now() + us / 1000;
  for (;;) {
    for (let i = 0; i < 64; i++) if (ready()) return true;
    if (performance.now() >= end) return ready();
  }
}
