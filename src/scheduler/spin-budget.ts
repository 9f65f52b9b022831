/**
 * How long to spin before parking. Spinning buys sub-microsecond hand-offs while calls keep
 * coming; parking costs a futex wake (~20 µs) but no CPU. The budget doubles each time a spin
 * pays off and halves each time it does not, within [minUs, maxUs].
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

  hit(): void {
    this.budget = Math.min(this.maxUs, this.budget * 2 || this.minUs);
  }

  miss(): void {
    this.budget = Math.max(this.minUs, this.budget / 2);
  }
}

/**
 * Spins until `ready()` is true or `us` microseconds pass. The clock is read every 64 polls so
 * that a poll stays a load and a compare.
 */
export function spinUntil(ready: () => boolean, us: number): boolean {
  if (ready()) return true;
  if (us <= 0) return false;
  const end = performance.now() + us / 1000;
  for (;;) {
    for (let i = 0; i < 64; i++) if (ready()) return true;
    if (performance.now() >= end) return ready();
  }
}
