import { WorkerDeviceAccess, type WorkerResources } from './worker-device.js';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { CANCEL_ENTRY_BYTES, CancelReason, type ChannelLayout, Status, Word } from '../scheduler/ring-layout.js';
import { COMPLETIONS, REQUESTS, SlotRing, type SlotMessage, newSlotMessage } from '../scheduler/slot-ring.js';
import type { Payload } from '../scheduler/payload.js';
import { type Wake, atomicsWake } from '../scheduler/wake.js';
import { ArrivalSpin } from '../scheduler/arrival-spin.js';
import { BUSY_YIELD_US, spinUntil } from '../scheduler/spin-budget.js';
import { BatchCall, BatchMember } from './batch-call.js';
import { CallContext } from './call-context.js';
import type { SingleCapabilityDefinition } from './define-worker.js';
import type { LoadedCapability } from './load-worker-module.js';

const encoder = new TextEncoder();
const noop = (): void => {};

/**
 * While handlers run, the loop parks in an async wait on the request tail and looks at its words
 * at least this often. A cancel does not move the request tail, so its wake-up is the only thing
 * that ends the wait, and one sent before the wait began is lost: a process worker's async wait
 * starts on a thread of its own, some tens of µs after the loop decided to park, and Node 20 has
 * been seen to drop an Atomics.notify for a pending Atomics.waitAsync (see controller-channel.ts).
 * Without this bound a lost cancel waited for the handler to finish, past the controller's grace.
 */
const ASYNC_PARK_CHECK_MS = 10;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/** Turns anything a handler threw into the error record that travels back to the controller. */
export interface ErrorRecord {
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}

export function errorRecord(err: unknown, capability: string): ErrorRecord {
  if (err instanceof CaphostError) return err.toJSON();
  if (err !== null && typeof err === 'object' && isErrorCode((err as { code?: unknown }).code)) {
    return { code: (err as { code: string }).code, message: String((err as { message?: unknown }).message) };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCode.HANDLER_ERROR, message: `handler of ${capability} threw: ${message}`, details: { name: err instanceof Error ? err.name : typeof err } };
}

/**
 * The worker's side of its channel: takes requests off the request ring, runs handlers and writes
 * completions. Between calls it spins for an adaptive budget, then parks in Atomics.wait (or
 * Atomics.waitAsync while async handlers are pending, so that their continuations can run).
 */
export class WorkerLoop {
  private readonly requests: SlotRing;
  private readonly completions: SlotRing;
  private readonly i32: Int32Array;
  private readonly cancels: Uint32Array;
  private readonly cancelMask: number;
  private cancelHead: number;
  private readonly message = newSlotMessage();
  /**
   * Up to 2 ms for a local caller that waits on each answer, whose wake-up a park would add to
   * each call (one HTTP connection: 57 µs round trip spinning, 73 µs parking). While its caller is
   * behind, a park is priced at 500 µs of spinning instead, which keeps the spin at 64-128 µs
   * under 64 HTTP connections. A mesh peer's calls have a spin of their own (peerSpin).
   */
  private readonly spin = new ArrivalSpin(2, 2000, 500);
  /**
   * For a mesh peer's calls (Word.PEER_CALLER), while the peer waits on each answer: up to 64 µs,
   * and a park priced at 64 µs. Its next call is a network round trip away (hundreds of µs at
   * least), so it is not spun for: a spin would hold a CPU all that time to save one wake-up, and
   * where the caller, nats-server and this node's event loop need that CPU it delays the very
   * call it waits for. Calls that come closer (a burst, many in flight) still get a short spin.
   * Mesh bench, five alternating pairs on two vCPUs: remote p50 1.20-1.50x raw NATS with the
   * 2 ms spin, 1.09-1.15x with this one.
   */
  private readonly peerSpin = new ArrivalSpin(2, 64);
  /** Async calls in progress (and the calls of async batches), by request position. */
  private readonly running = new Map<number, CallContext | BatchMember>();
  /** Cancels that arrived for requests not yet read, by request position. */
  private readonly cancelledEarly = new Map<number, number>();
  private stopped = false;
  private parkToken = 0;
  private keepAlive: NodeJS.Timeout | undefined;
  private handled = 0;
  /** ctx.device and ctx.weights; set by the entry before start(). */
  resources: WorkerResources = new WorkerDeviceAccess(undefined, [], 'this worker was started without a device');

  constructor(
    buffer: SharedArrayBuffer | ArrayBuffer,
    layout: ChannelLayout,
    private readonly arena: SharedArrayBuffer | null,
    private readonly capabilities: readonly LoadedCapability[],
    private readonly log: Logger,
    private readonly onStop: () => void,
    private readonly wake: Wake = atomicsWake,
  ) {
    this.requests = SlotRing.consumer(buffer, layout, REQUESTS(layout));
    this.completions = new SlotRing(buffer, layout, COMPLETIONS(layout));
    this.i32 = this.requests.i32;
    this.cancels = new Uint32Array(buffer, layout.cancelOffset, (layout.slots * CANCEL_ENTRY_BYTES) >> 2);
    this.cancelMask = layout.slots - 1;
    this.cancelHead = Atomics.load(this.i32, Word.CANCEL_HEAD) >>> 0;
  }

  start(): void {
    this.pump();
  }

  private readonly hasWork = (): boolean =>
    this.requests.hasMessage() ||
    (Atomics.load(this.i32, Word.CANCEL_TAIL) >>> 0) !== this.cancelHead ||
    Atomics.load(this.i32, Word.SHUTDOWN) !== 0;

  private readonly resume = (): void => this.resumeFrom(this.parkToken);

  /**
   * Leaves an async park. A pending Atomics.waitAsync cannot be withdrawn, so each park has a
   * token and a stale wake-up is ignored. Parking async also holds a timer, because a pending
   * waitAsync alone does not keep a worker thread's event loop alive.
   */
  private resumeFrom(token: number): void {
    if (token !== this.parkToken || this.keepAlive === undefined) return;
    this.parkToken++;
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    Atomics.store(this.i32, Word.WORKER_PARKED, 0);
    this.pump();
  }

  /** The last async call settled while parked async: go back to the blocking park. */
  private asyncSettled(): void {
    if (this.running.size === 0 && this.keepAlive !== undefined) this.resumeFrom(this.parkToken);
  }

  private pump(): void {
    for (;;) {
      if (Atomics.load(this.i32, Word.SHUTDOWN) !== 0) return this.stop();
      this.drainCancels();
      let handled = 0;
      while (this.requests.hasMessage()) {
        this.drainCancels();
        this.handleNext();
        // Async continuations only run when this loop yields; don't let a flood starve them.
        if (++handled >= 1024 && this.running.size > 0) {
          this.keepAlive = setInterval(noop, 1 << 30);
          setImmediate(this.resume);
          return;
        }
      }
      let spun = 0;
      let spin = this.spin;
      if (this.running.size === 0) {
        this.spin.behind(this.completions.unread);
        const behind = this.spin.callerBehind;
        if (!behind && Atomics.load(this.i32, Word.PEER_CALLER) !== 0) spin = this.peerSpin;
        spun = spin.us;
        const spinSince = performance.now();
        if (spinUntil(this.hasWork, spun, behind ? BUSY_YIELD_US : 0)) {
          spin.observe((performance.now() - spinSince) * 1000);
          continue;
        }
      }
      const idleSince = performance.now() - spun / 1000;
      const seen = this.requests.consumed | 0;
      Atomics.store(this.i32, Word.WORKER_PARKED, 1);
      if (this.hasWork()) {
        Atomics.store(this.i32, Word.WORKER_PARKED, 0);
        continue;
      }
      if (this.running.size > 0) {
        const wait = this.wake.waitAsync(this.i32, Word.REQ_TAIL, seen, ASYNC_PARK_CHECK_MS);
        if (wait === null) {
          Atomics.store(this.i32, Word.WORKER_PARKED, 0);
          continue;
        }
        const token = this.parkToken;
        this.keepAlive = setInterval(noop, 1 << 30);
        void wait.then(() => this.resumeFrom(token));
        return;
      }
      this.wake.wait(this.i32, Word.REQ_TAIL, seen);
      Atomics.store(this.i32, Word.WORKER_PARKED, 0);
      spin.observe((performance.now() - idleSince) * 1000);
    }
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const reason = new CaphostError(ErrorCode.CONTROLLER_CLOSED, 'the controller is shutting this worker down');
    for (const ctx of this.running.values()) (ctx instanceof BatchMember ? ctx.batch : ctx).abort(reason);
    this.onStop();
  }

  private drainCancels(): void {
    const tail = Atomics.load(this.i32, Word.CANCEL_TAIL) >>> 0;
    if (this.cancelHead === tail) return;
    while (this.cancelHead !== tail) {
      const at = (this.cancelHead & this.cancelMask) * 2;
      const position = this.cancels[at]!;
      const reason = this.cancels[at + 1]!;
      this.cancelHead = (this.cancelHead + 1) >>> 0;
      const ctx = this.running.get(position);
      if (ctx !== undefined) ctx.abort(abortError(reason, ctx.capability));
      else if (((position - this.requests.consumed) | 0) >= 0) this.cancelledEarly.set(position, reason);
    }
    Atomics.store(this.i32, Word.CANCEL_HEAD, this.cancelHead | 0);
  }

  private handleNext(): void {
    const position = this.requests.consumed;
    const msg = this.requests.read(this.message);
    // The controller is trusted: a malformed request is a bug, and ending the worker is the safe answer.
    if (msg === null) throw new Error(`caphost worker: malformed request in the ring: ${this.requests.corruption}`);
    const ticket = msg.ticket;
    const cap = this.capabilities[msg.kind];
    if (cap?.batch !== undefined) {
      this.handleBatch(position, msg, cap);
      return;
    }
    const refusal =
      cap === undefined
        ? { code: ErrorCode.CAPABILITY_NOT_FOUND, message: `worker has no capability at index ${msg.kind}` }
        : this.refusal(position, msg.time, cap.key);
    if (refusal !== undefined) {
      this.requests.release();
      this.fail(ticket, refusal, 0);
      return;
    }
    const deadline = msg.time > 0 ? msg.time : undefined;
    // Busy time feeds the controller's ring-depth estimate; a sample of calls is enough.
    const started = (++this.handled & 7) === 0 ? performance.now() : 0;
    let result: unknown;
    const ctx = new CallContext(cap!.key, deadline, this.log, this.resources);
    try {
      let input;
      try {
        input = cap.schema.input.decode(msg.bytes, msg.start, msg.length, msg.refs, this.arena);
      } finally {
        this.requests.release();
      }
      result = (cap.definition as SingleCapabilityDefinition).handler(input, ctx);
    } catch (err) {
      this.fail(ticket, errorRecord(err, cap.key), 0);
      return;
    }
    if (!isThenable(result)) {
      this.succeed(ticket, cap, result, started === 0 ? 0 : performance.now() - started);
      return;
    }
    const busy = started === 0 ? 0 : performance.now() - started;
    this.running.set(position, ctx);
    result.then(
      (output) => {
        this.running.delete(position);
        this.succeed(ticket, cap, output, busy);
        this.asyncSettled();
      },
      (err: unknown) => {
        this.running.delete(position);
        this.fail(ticket, errorRecord(err, cap.key), busy);
        this.asyncSettled();
      },
    );
  }

  /**
   * Reads the requests of one batch (the controller published them together, the first one
   * carrying their count), answers those already cancelled or past their deadline, and runs the
   * handler once over the rest. Each call's output or error goes back under its own ticket.
   */
  private handleBatch(position: number, msg: SlotMessage, cap: LoadedCapability): void {
    const count = msg.batch > 1 ? msg.batch : 1;
    const batch = new BatchCall(cap.key, this.log, this.answerEarly, this.resources);
    const inputs: unknown[] = [];
    const kind = msg.kind;
    for (let i = 0; i < count; i++) {
      if (i > 0) {
        position = this.requests.consumed;
        // The controller is trusted, and publishes a batch at once: a short one is a bug.
        if (!this.requests.hasMessage() || this.requests.read(this.message) === null || msg.kind !== kind) {
          throw new Error(`caphost worker: a batch of ${count} in the ring ends after ${i} requests`);
        }
      }
      const ticket = msg.ticket;
      const refusal = this.refusal(position, msg.time, cap.key);
      if (refusal !== undefined) {
        this.requests.release();
        this.fail(ticket, refusal, 0);
        continue;
      }
      try {
        inputs.push(cap.schema.input.decode(msg.bytes, msg.start, msg.length, msg.refs, this.arena));
      } catch (err) {
        this.fail(ticket, errorRecord(err, cap.key), 0);
        continue;
      } finally {
        this.requests.release();
      }
      batch.add(ticket, position, msg.time > 0 ? msg.time : undefined);
    }
    if (batch.size === 0) return;
    let result: unknown;
    try {
      result = (cap.definition.handler as (inputs: unknown[], ctx: BatchCall) => unknown)(inputs, batch);
    } catch (err) {
      this.finishBatch(batch, cap, undefined, err);
      return;
    }
    if (!isThenable(result)) {
      this.finishBatch(batch, cap, result, undefined);
      return;
    }
    for (const member of batch.members) this.running.set(member.position, member);
    result.then(
      (outputs) => {
        for (const member of batch.members) this.running.delete(member.position);
        this.finishBatch(batch, cap, outputs, undefined);
        this.asyncSettled();
      },
      (err: unknown) => {
        for (const member of batch.members) this.running.delete(member.position);
        this.finishBatch(batch, cap, undefined, err);
        this.asyncSettled();
      },
    );
  }

  private readonly answerEarly = (member: BatchMember, reason: Error): void => {
    this.fail(member.ticket, errorRecord(reason, member.capability), 0);
  };

  /**
   * Answers every call of a batch not answered yet: its output, the Error its handler put in its
   * place, or the handler's own failure. Busy times are not reported: a batch's time is not one call's.
   */
  private finishBatch(batch: BatchCall, cap: LoadedCapability, outputs: unknown, thrown: unknown): void {
    const members = batch.members;
    let failure: ErrorRecord | undefined;
    if (thrown !== undefined) failure = errorRecord(thrown, cap.key);
    else if (!Array.isArray(outputs) || outputs.length !== members.length) {
      const got = Array.isArray(outputs) ? `${outputs.length} outputs` : typeof outputs;
      failure = { code: ErrorCode.HANDLER_ERROR, message: `the batch handler of ${cap.key} returned ${got} for ${members.length} inputs; it must return an array with one output (or Error) per input, in order` };
    }
    for (let i = 0; i < members.length; i++) {
      const member = members[i]!;
      if (member.done) continue;
      member.done = true;
      if (failure !== undefined) this.fail(member.ticket, failure, 0);
      else {
        const output = (outputs as unknown[])[i];
        if (output instanceof Error) this.fail(member.ticket, errorRecord(output, cap.key), 0);
        else this.succeed(member.ticket, cap, output, 0);
      }
    }
  }

  /** A request cancelled before it was read, or already past its deadline, is answered without running. */
  private refusal(position: number, deadline: number, capability: string): ErrorRecord | undefined {
    if (this.cancelledEarly.size > 0) {
      const reason = this.cancelledEarly.get(position);
      if (reason !== undefined) {
        this.cancelledEarly.delete(position);
        return abortError(reason, capability).toJSON();
      }
    }
    if (deadline > 0 && Date.now() >= deadline) return abortError(CancelReason.DEADLINE, capability).toJSON();
    return undefined;
  }

  private succeed(ticket: number, cap: LoadedCapability, output: unknown, busyMs: number): void {
    let encoded: ReturnType<LoadedCapability['schema']['output']['encode']>;
    try {
      cap.schema.output.check(output);
      encoded = cap.schema.output.encode(output as object, this.arena);
    } catch (err) {
      this.fail(ticket, errorRecord(err, cap.key), busyMs);
      return;
    }
    if (!this.completions.fits(encoded.bytes.len, encoded.refs?.length ?? 0)) {
      this.fail(ticket, {
        code: ErrorCode.PAYLOAD_TOO_LARGE,
        message: `output of ${cap.key} is ${encoded.bytes.len} bytes, more than the channel carries; return large buffers as views of the shared arena, or raise transport.overflowBytes`,
      }, busyMs);
      return;
    }
    this.complete(ticket, Status.OK, busyMs, encoded.bytes, encoded.refs);
  }

  private fail(ticket: number, record: ErrorRecord, busyMs: number): void {
    this.complete(ticket, Status.ERROR, busyMs, encoder.encode(JSON.stringify(record)), null);
  }

  private complete(ticket: number, status: number, busyMs: number, bytes: Payload, refs: Parameters<SlotRing['write']>[4]): void {
    while (!this.completions.write(ticket, status, busyMs * 1e6, bytes, refs)) {
      // The controller has not yet drained the overflow ring; it always does, so wait briefly.
      this.wake.wait(this.i32, Word.CMP_OVF_READ, Atomics.load(this.i32, Word.CMP_OVF_READ), 1);
      if (Atomics.load(this.i32, Word.SHUTDOWN) !== 0) return;
    }
    // Whoever clears the flag sends the one wake-up a park needs; later completions skip the syscall.
    if (Atomics.load(this.i32, Word.CONTROLLER_PARKED) !== 0 && Atomics.compareExchange(this.i32, Word.CONTROLLER_PARKED, 1, 0) === 1) {
      this.wake.notify(this.i32, Word.CMP_TAIL);
    }
  }
}

function abortError(reason: number, capability: string): CaphostError {
  return reason === CancelReason.DEADLINE
    ? new CaphostError(ErrorCode.DEADLINE_EXCEEDED, `the deadline of this ${capability} call has passed`)
    : new CaphostError(ErrorCode.CANCELLED, `the caller cancelled this ${capability} call`);
}
