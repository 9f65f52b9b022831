/** Gaps weigh this many observations; older ones fade by half each time the count reaches it. */
const WINDOW = 128;
/** The budget is re-priced after this many observations, so a worker's idle loop stays a few loads. */
const REPRICE_EVERY = 8;

/**
 * How long a worker spins for its next request before it parks, priced from the gaps it has seen
 * between requests. Each candidate budget (powers of two from minUs up to maxUs) is charged over
 * the recent gaps: a gap within it costs its own length in spinning; a longer one costs the whole
 * budget and then a park. The cheapest candidate wins.
 *
 * A park's price depends on who waits for it. A caller that waits for each answer before it sends
 * the next (one HTTP client, a mesh peer one round trip away) pays the worker's wake-up in
 * latency, tens of µs on a VM: the park is priced at maxUs, and the worker spins through regular
 * gaps up to that. A caller that is behind, with the worker's answers piling up uncollected
 * (behind()), is a busy event loop whose clients wait on its throughput: a spin there takes CPU
 * that loop needs, and the park is priced at busyParkUs.
 *
 * Gaps that are mostly short with a long tail (many connections, the event loop busy with I/O
 * between batches) stop it spending the whole maximum on each long one: at 64 HTTP connections
 * on two CPUs the old rule (grow to twice any gap within the maximum) spun 30% of the wall clock,
 * three quarters of it on the 6% of gaps it then parked after anyway. An idle worker parks at once.
 */
export class ArrivalSpin {
  /** counts[k]: gaps in (2^(k-1), 2^k] µs (k = 0: up to 1 µs); the last slot: gaps past maxUs. */
  readonly #counts: Float64Array;
  /** Mean gap of each slot's range, the spin a gap there costs. */
  readonly #typical: Float64Array;
  readonly #over: number;
  #total = 0;
  #unpriced = 0;
  #budget: number;
  /** Share of recent waits that began with the caller behind (see behind()). */
  #behindShare = 0;

  constructor(
    private readonly minUs: number,
    private readonly maxUs: number,
    /** The park's price while the caller is behind (see behind()); maxUs otherwise. */
    private readonly busyParkUs: number = maxUs,
  ) {
    this.#over = Math.max(1, Math.ceil(Math.log2(maxUs))) + 1;
    this.#counts = new Float64Array(this.#over + 1);
    this.#typical = new Float64Array(this.#over);
    this.#typical[0] = 0.5;
    for (let k = 1; k < this.#over; k++) this.#typical[k] = (2 ** (k - 1) + Math.min(2 ** k, maxUs)) / 2;
    this.#budget = maxUs;
  }

  get us(): number {
    return this.#budget;
  }

  /** Records how long the wait for the next request took, in µs (spinning or parked). */
  observe(gapUs: number): void {
    const k = gapUs > this.maxUs ? this.#over : gapUs <= 1 ? 0 : Math.ceil(Math.log2(gapUs));
    this.#counts[k]!++;
    if (++this.#total >= WINDOW) {
      for (let i = 0; i <= this.#over; i++) this.#counts[i]! *= 0.5;
      this.#total *= 0.5;
    }
    if (++this.#unpriced >= REPRICE_EVERY) {
      this.#unpriced = 0;
      this.#budget = this.#cheapest();
    }
  }

  /**
   * Records how many of the worker's answers wait for its caller to collect them as it starts to
   * wait. More than one means the caller's thread is behind, busy with other work (a server's
   * event loop reading sockets between calls): its callers wait on its throughput, not on this
   * worker's next hand-off, so a park delays nobody's answer by much and costs only CPU.
   */
  behind(unread: number): void {
    this.#behindShare += ((unread > 1 ? 1 : 0) - this.#behindShare) / 16;
  }

  /** Whether the caller is behind (see behind()). */
  get callerBehind(): boolean {
    return this.#behindShare > 0.25;
  }

  /** With every recent gap past the maximum, every budget costs itself plus a park: the smallest wins. */
  #cheapest(): number {
    const park = this.callerBehind ? this.busyParkUs : this.maxUs;
    let covered = 0;
    let spun = 0;
    let best = this.minUs;
    let bestCost = Infinity;
    for (let k = 0; k < this.#over; k++) {
      covered += this.#counts[k]!;
      spun += this.#counts[k]! * this.#typical[k]!;
      const budget = Math.min(2 ** k, this.maxUs);
      if (budget < this.minUs) continue;
      const cost = spun + (this.#total - covered) * (budget + park);
      if (cost < bestCost) {
        bestCost = cost;
        best = budget;
      }
    }
    return best;
  }
}
