import { CANCEL_ENTRY_BYTES, type ChannelLayout, Word } from './ring-layout.js';
import { type ArenaRef, COMPLETIONS, REQUESTS, SlotRing, type SlotMessage, newSlotMessage } from './slot-ring.js';
import type { Payload } from './payload.js';
import { type Wake, atomicsWake } from './wake.js';
import { BUSY_YIELD_US, ONE_CPU, SpinBudget, spinUntil } from './spin-budget.js';

/**
 * Receives each completion as it is read, and must call `channel.release()` once it has decoded
 * the payload; the message object is reused after it returns.
 */
export type CompletionSink = (message: SlotMessage, channel: ControllerChannel) => void;

/**
 * Called once when the worker wrote a completion no honest worker writes (see SlotRing.read);
 * the channel has stopped reading, and the owner must end the worker.
 */
export type CorruptionSink = (reason: string) => void;

/**
 * A parked controller looks at its completion ring at least this often while calls are in
 * flight. Under load on Node 20 a worker's Atomics.notify has been seen not to settle a pending
 * Atomics.waitAsync (test/controller/settle-exactly-once and the bench reproduce it within
 * minutes); this bounds what such a lost wake-up costs. An idle controller does not park at all.
 */
const PARK_CHECK_MS = 2;

/** How many pumps may follow one another as microtasks before the loop yields to I/O and timers. */
const MICROTASK_BURST = 32;
/**
 * While calls are in flight, how often the channel looks for a side asleep on work that waits for
 * it. A wake-up can go missing: in the mesh bench (128 calls in flight, once in 21 runs of a soak and once in about 17 runs before)
 * every call of a ring stayed held until its 10 s deadline, with the controller's park check
 * (PARK_CHECK_MS) coming back only then. Two looks in a row that find the same stuck state wake
 * the sleeper, so such a loss costs 10-20 ms instead of the calls' deadlines.
 */
const WATCH_MS = 10;

/**
 * The controller's side of one worker channel. It produces requests and cancels, consumes
 * completions, and never blocks the event loop for longer than a bounded, adaptive spin:
 * when nothing arrives within it, it parks in Atomics.waitAsync and the worker notifies it.
 */
export class ControllerChannel {
  private readonly requests: SlotRing;
  private readonly completions: SlotRing;
  private readonly i32: Int32Array;
  private readonly cancels: Uint32Array;
  private readonly cancelMask: number;
  private cancelTail: number;
  private readonly message = newSlotMessage();
  /** Spin after a lone request: pays off when the worker is awake and the handler is short. */
  private readonly soloSpin = new SpinBudget(1, 50);
  /** Spin after a lone request that had to wake the worker: covers its wake-up (~20-60 µs on a VM). */
  private readonly coldSpin = new SpinBudget(1, 150);
  /** Spin before parking while calls are in flight. */
  private readonly flowSpin = new SpinBudget(1, 20);
  /** The budget whose spin gave up last, to learn from the gap that followed. */
  private parkedBudget = this.flowSpin;
  private armed = false;
  /** When the last spin gave up and the channel parked (0 when not parked). */
  private parkedSince = 0;
  /** Set when placing a request had to wake the worker; the next spin allows for its wake-up. */
  private wokeWorker = false;
  private burst = 0;
  private closed = false;
  /** Wake-ups the worker sent that never arrived (caught by PARK_CHECK_MS). */
  missedWakeups = 0;
  /** Wake-ups the watch sent a worker that held requests without moving on for two looks. */
  workerNudges = 0;
  /** Parks the watch ended: their wait had not come back after two looks (10-20 ms, for a 2 ms timeout). */
  stalledParks = 0;
  #watch: NodeJS.Timeout | undefined;
  /** Each park's number: a watch that ends a park makes its pending wait's settling stale. */
  #parkToken = 0;
  #parked = false;
  /** What the last watch saw stuck: request head (worker side), completion head (this side); -1: nothing. */
  #stuckRequests = -1;
  #stuckCompletions = -1;
  /** Calls placed in this channel and not yet completed; kept by the owner through place/complete. */
  inFlight = 0;

  constructor(
    readonly buffer: SharedArrayBuffer | ArrayBuffer,
    readonly layout: ChannelLayout,
    private readonly sink: CompletionSink,
    private readonly wake: Wake = atomicsWake,
    private readonly onCorrupt: CorruptionSink | null = null,
  ) {
    this.requests = new SlotRing(buffer, layout, REQUESTS(layout));
    this.completions = SlotRing.consumer(buffer, layout, COMPLETIONS(layout));
    this.i32 = this.requests.i32;
    this.cancels = new Uint32Array(buffer, layout.cancelOffset, (layout.slots * CANCEL_ENTRY_BYTES) >> 2);
    this.cancelMask = layout.slots - 1;
    this.cancelTail = Atomics.load(this.i32, Word.CANCEL_TAIL) >>> 0;
  }

  /** Ring position the next request will take: identifies it to cancel() and to crash recovery. */
  get nextPosition(): number {
    return this.requests.position;
  }

  /** Requests the worker has taken off the ring so far (a ring position). */
  get consumedPosition(): number {
    return Atomics.load(this.i32, Word.REQ_HEAD) >>> 0;
  }

  /**
   * Places a request; false when its payload needs overflow space the worker has not released
   * yet. The caller keeps inFlight below the slot count, so a slot is always free. `fromPeer`: a
   * mesh peer's call (the worker then spins only briefly for the next; see Word.PEER_CALLER).
   */
  place(ticket: number, kind: number, deadline: number, payload: Payload, refs: readonly ArenaRef[] | null, fromPeer = false): boolean {
    this.#markPeerCaller(fromPeer);
    if (!this.requests.write(ticket, kind, deadline, payload, refs)) return false;
    this.inFlight++;
    if (this.#watch === undefined) this.#startWatch();
    // Whoever clears the flag sends the one wake-up a park needs; later requests skip the syscall.
    if (Atomics.load(this.i32, Word.WORKER_PARKED) !== 0 && Atomics.compareExchange(this.i32, Word.WORKER_PARKED, 1, 0) === 1) {
      this.wake.notify(this.i32, Word.REQ_TAIL);
      this.wokeWorker = true;
    }
    // The pump runs as a microtask, after the continuations already queued have placed their calls.
    if (!this.armed) this.arm();
    return true;
  }

  /** This side's copy of Word.PEER_CALLER, so that the word is written only when it changes. */
  #peerCaller = false;

  /** Written before the request it describes is published, so the worker sees both together. */
  #markPeerCaller(fromPeer: boolean): void {
    if (fromPeer === this.#peerCaller) return;
    this.#peerCaller = fromPeer;
    Atomics.store(this.i32, Word.PEER_CALLER, fromPeer ? 1 : 0);
  }

  /** Ring position of the first request of the batch being placed (-1: none). */
  private batchStart = -1;

  /**
   * Starts a batch: the requests placed until endBatch() are published together, the first marked
   * with their count, so the worker hands them to one handler invocation.
   */
  beginBatch(): void {
    this.batchStart = this.requests.position;
  }

  /** place(), for a request of the batch begun by beginBatch(): written now, published by endBatch(). */
  placeInBatch(ticket: number, kind: number, deadline: number, payload: Payload, refs: readonly ArenaRef[] | null, fromPeer = false): boolean {
    this.#markPeerCaller(fromPeer);
    if (!this.requests.write(ticket, kind, deadline, payload, refs, false)) return false;
    this.inFlight++;
    if (this.#watch === undefined) this.#startWatch();
    return true;
  }

  /** Publishes the batch begun by beginBatch() (nothing when no request was placed in it). */
  endBatch(): void {
    const start = this.batchStart;
    this.batchStart = -1;
    const size = (this.requests.position - start) >>> 0;
    if (size === 0) return;
    this.requests.markBatch(start, size);
    this.requests.publish();
    if (Atomics.load(this.i32, Word.WORKER_PARKED) !== 0 && Atomics.compareExchange(this.i32, Word.WORKER_PARKED, 1, 0) === 1) {
      this.wake.notify(this.i32, Word.REQ_TAIL);
      this.wokeWorker = true;
    }
    if (!this.armed) this.arm();
  }

  /** Asks the worker to abort the request at `position`; harmless if it already finished. */
  cancel(position: number, reason: number): void {
    const head = Atomics.load(this.i32, Word.CANCEL_HEAD) >>> 0;
    if (((this.cancelTail - head) >>> 0) >= this.layout.slots) return;
    const at = (this.cancelTail & this.cancelMask) * 2;
    this.cancels[at] = position;
    this.cancels[at + 1] = reason;
    this.cancelTail = (this.cancelTail + 1) >>> 0;
    Atomics.store(this.i32, Word.CANCEL_TAIL, this.cancelTail | 0);
    this.wake.notify(this.i32, Word.REQ_TAIL);
  }

  /** Releases the completion the sink is looking at. */
  release(): void {
    this.completions.release();
  }

  /** Set once a malformed completion was seen: nothing more is read from this channel. */
  corrupt = false;

  /** Reads every completion that has arrived; stops for good at a malformed one. */
  drain(): number {
    let n = 0;
    if (this.corrupt) return 0;
    while (this.completions.hasMessage()) {
      if (this.completions.read(this.message) === null) {
        this.corrupt = true;
        this.closed = true;
        this.onCorrupt?.(this.completions.corruption);
        return n;
      }
      this.inFlight--;
      n++;
      this.sink(this.message, this);
    }
    return n;
  }

  private arm(): void {
    this.armed = true;
    queueMicrotask(this.pump);
  }

  private readonly hasCompletion = (): boolean => this.completions.hasMessage();

  /**
   * Drains completions, then decides how to wait for the next: spin (a lone call's answer often
   * comes back within a microsecond or two, or within the worker's wake-up time if it had to be
   * woken, cheaper than a wake-up of this thread's event loop), go round again as a microtask
   * (so that continuations of settled calls can place the next calls), or park.
   */
  private readonly pump = (): void => {
    this.armed = false;
    if (this.closed) return;
    let n = this.drain();
    if (this.closed) return; // a malformed completion closed it
    if (n > 0 && this.parkedSince !== 0) {
      // A spin gave up before this completion came: let its budget learn the gap.
      this.parkedBudget.observe((performance.now() - this.parkedSince) * 1000);
      this.parkedSince = 0;
    }
    if (this.inFlight === 0 || this.armed) {
      this.burst = 0;
      return;
    }
    if (n === 0) {
      const budget = this.inFlight > 1 ? this.flowSpin : this.wokeWorker ? this.coldSpin : this.soloSpin;
      this.wokeWorker = false;
      if (ONE_CPU ? this.sleepUntilCompletion(budget.us) : spinUntil(this.hasCompletion, budget.us, this.inFlight > 1 ? BUSY_YIELD_US : 0)) n = this.drain();
      else if (this.parkedSince === 0) {
        this.parkedSince = performance.now() - budget.us / 1000;
        this.parkedBudget = budget;
      }
      if (this.inFlight === 0 || this.armed) return;
    }
    if (n === 0) {
      this.burst = 0;
      this.park();
    } else if (++this.burst < MICROTASK_BURST) {
      this.arm();
    } else {
      this.burst = 0;
      this.armed = true;
      setImmediate(this.pump);
    }
  };

  /**
   * The spin's stand-in where the process has one CPU (ONE_CPU): a wait on the completion tail,
   * bounded by the same budget, holds the event loop no longer than the spin would, but lets the
   * worker run. The worker notifies because the parked flag is up, as for park().
   */
  private sleepUntilCompletion(us: number): boolean {
    if (this.completions.hasMessage()) return true;
    if (us <= 0) return false;
    Atomics.store(this.i32, Word.CONTROLLER_PARKED, 1);
    if (!this.completions.hasMessage()) this.wake.wait(this.i32, Word.CMP_TAIL, this.completions.consumed | 0, us / 1000);
    Atomics.store(this.i32, Word.CONTROLLER_PARKED, 0);
    return this.completions.hasMessage();
  }

  private park(): void {
    this.armed = true;
    Atomics.store(this.i32, Word.CONTROLLER_PARKED, 1);
    const wait = this.completions.hasMessage() ? null : this.wake.waitAsync(this.i32, Word.CMP_TAIL, this.completions.consumed | 0, PARK_CHECK_MS);
    if (wait === null) {
      Atomics.store(this.i32, Word.CONTROLLER_PARKED, 0);
      setImmediate(this.pump);
      return;
    }
    const token = ++this.#parkToken;
    this.#parked = true;
    void wait.then((outcome) => this.woken(outcome, token));
  }

  private woken(outcome: unknown, token: number): void {
    if (token !== this.#parkToken) return; // the watch ended this park already
    this.#parked = false;
    // The worker clears the flag when it notifies; a timeout that finds it cleared, with
    // completions waiting, means a notify was sent and never arrived.
    const flag = Atomics.exchange(this.i32, Word.CONTROLLER_PARKED, 0);
    if (outcome === 'timed-out' && flag === 0 && this.completions.hasMessage()) this.missedWakeups++;
    this.pump();
  }

  #startWatch(): void {
    this.#stuckRequests = -1;
    this.#stuckCompletions = -1;
    this.#watch = setInterval(this.#look, WATCH_MS);
    this.#watch.unref();
  }

  /** Runs while calls are in flight (it stops at the first look that finds none). */
  readonly #look = (): void => {
    if (this.closed || this.inFlight === 0) {
      clearInterval(this.#watch);
      this.#watch = undefined;
      return;
    }
    // Requests wait in the ring and the worker has not moved on since the last look: it slept
    // through its wake-up, or it runs a handler longer than WATCH_MS (then this wakes no one).
    const head = Atomics.load(this.i32, Word.REQ_HEAD) | 0;
    const waiting = (Atomics.load(this.i32, Word.REQ_TAIL) | 0) !== head;
    if (waiting && this.#stuckRequests === head) {
      this.workerNudges++;
      this.wake.notify(this.i32, Word.REQ_TAIL);
    }
    this.#stuckRequests = waiting ? head : -1;
    // This side is parked with completions waiting, and was at the last look too.
    const consumed = this.completions.consumed | 0;
    const stuck = this.#parked && this.completions.hasMessage();
    if (stuck && this.#stuckCompletions === consumed) {
      this.stalledParks++;
      this.#parkToken++;
      this.#parked = false;
      Atomics.store(this.i32, Word.CONTROLLER_PARKED, 0);
      this.#stuckCompletions = -1;
      this.pump();
    } else this.#stuckCompletions = stuck ? consumed : -1;
  };

  /** Asks the worker to leave its loop; it runs teardown and exits. */
  shutdown(): void {
    Atomics.store(this.i32, Word.SHUTDOWN, 1);
    this.wake.notify(this.i32, Word.REQ_TAIL);
  }

  /** Stops reading completions; the worker is gone or going. Wakes a pending wait so it can settle. */
  close(): void {
    this.closed = true;
    if (this.#watch !== undefined) clearInterval(this.#watch);
    this.#watch = undefined;
    this.wake.notify(this.i32, Word.CMP_TAIL);
  }
}
