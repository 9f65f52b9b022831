import { SignalWatch } from './signal-watch.js';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';
import type { CapabilityRoute, RouteGroup } from '../router/capability-registry.js';
import { pickRoute } from '../router/route-table.js';
import { BatchQueue } from './batch-queue.js';
import { CallQueue } from './call-queue.js';
import type { CallObserver } from './call-observer.js';
import { decideBatch } from './decide-batch.js';
import type { CompletionSink, ControllerChannel } from './controller-channel.js';
import { DeadlineTimer } from './deadline-timer.js';
import { CallState, type PendingCall } from './pending-call.js';
import { Replica } from './replica.js';
import { CancelReason, Status } from './ring-layout.js';
import type { SlotMessage } from './slot-ring.js';
import { settlePayload } from './payload.js';
import type { DeviceTensor } from '../device/device-tensor.js';

export interface SchedulerOptions {
  /** Calls that may wait per capability request before QUEUE_FULL. */
  readonly maxQueue: number;
  /** How long a handler may ignore its aborted signal before its worker is recycled. */
  readonly abortGraceMs: number;
  /** The shared arena, for decoding zero-copy references in outputs. */
  readonly arena: SharedArrayBuffer | null;
  /** Grants and hand-overs of device tensors that travel in calls; absent when no device is open. */
  readonly tensors?: TensorBroker;
  /** Called when a replica must be recycled (a handler ran past its grace period). */
  readonly recycle: (replica: Replica, reason: string) => void;
}

/** What the scheduler needs of the device layer to move tensors with calls. */
export interface TensorBroker {
  /** Grants a call's input tensors to a worker session (with each tensor's rights); throws a CaphostError. */
  grant(call: PendingCall, session: string): void;
  /** The caller takes over the device tensors a worker returned; throws HANDLE_DENIED for one it had no rights on. */
  adopt(tensors: readonly DeviceTensor[], session: string): void;
}

export interface CapabilityCounters {
  submitted: number;
  ok: number;
  errors: Record<string, number>;
}

/**
 * Places calls on replicas: per-request priority queues, least-loaded dispatch through the
 * router's pure pick, deadlines and cancellation in queue and in flight, and recovery of the calls
 * a crashed worker held.
 */
export class Scheduler {
  /** By provider id, which the controller hands out densely from 0. */
  private readonly replicas: (Replica | undefined)[] = [];
  /**
   * By request text, not by group: the registry makes new group objects at each routing-table
   * change (a peer joins, leaves, or renews its certificate), and queues keyed by them piled up.
   */
  private readonly queues = new Map<string, CallQueue>();
  /** Queues of batched capability requests; their calls leave them as batches (see dispatchBatches). */
  private readonly batchQueues = new Map<string, BatchQueue>();
  private readonly deadlines = new DeadlineTimer((call) => this.abort(call, CancelReason.DEADLINE));
  private readonly signals = new SignalWatch((call) => this.abort(call, CancelReason.CANCELLED));
  private readonly counters = new Map<string, CapabilityCounters>();
  private queued = 0;
  private batchQueued = 0;
  private seq = 0;
  private readonly loadOf = (provider: number): number => this.replicas[provider]?.load() ?? Infinity;
  /** Told about every dispatch and settlement while set (metrics); null costs the call path nothing. */
  observer: CallObserver | null = null;
  /** A replica takes one batch at a time, as a Triton model instance does: the next forms while it runs. */
  private readonly batchLoadOf = (provider: number): number => {
    const replica = this.replicas[provider];
    if (replica === undefined || replica.channel === null || replica.batchLeft > 0 || replica.freeTicketCount === 0) return Infinity;
    return replica.channel.inFlight;
  };
  private readonly batchDue = (queue: BatchQueue): void => this.dispatchBatchQueue(queue);

  private replica(provider: number): Replica | undefined {
    return this.replicas[provider];
  }

  constructor(private readonly options: SchedulerOptions) {}

  addReplica(replica: Replica): void {
    this.replicas[replica.provider] = replica;
  }

  nextSeq(): number {
    return this.seq++;
  }

  /** Takes a new call: places it now if a replica has room and nothing queued is ahead, else queues it. */
  submit(call: PendingCall): void {
    call.counters = this.count(call.group.text);
    call.counters.submitted++;
    if (this.observer !== null) call.submittedAt = performance.now();
    if (call.deadline > 0) this.deadlines.add(call);
    if (call.signal !== undefined) {
      this.signals.watch(call);
      call.unwatch = this.signals.unwatch;
    }
    if (call.group.batched) {
      this.enqueue(call);
      return;
    }
    const queue = this.queues.get(call.group.text);
    if ((queue === undefined || queue.size === 0) && this.place(call)) return;
    this.enqueue(call);
  }

  private enqueue(call: PendingCall): void {
    const group = call.group;
    if (group.candidates.every((route) => this.replica(route.provider)?.failed ?? true)) {
      this.fail(call, new CaphostError(ErrorCode.CAPABILITY_UNAVAILABLE, `every worker providing "${group.text}" has failed and cannot be restarted; see the controller log for why`, { details: { capability: group.text } }));
      return;
    }
    if (group.batched) {
      this.enqueueBatched(call);
      return;
    }
    let queue = this.queues.get(group.text);
    if (queue === undefined) {
      queue = new CallQueue();
      this.queues.set(group.text, queue);
    }
    if (queue.size >= this.options.maxQueue) {
      this.fail(call, new CaphostError(ErrorCode.QUEUE_FULL, `the queue for "${group.text}" holds ${queue.size} calls (maxQueue); retry later, add replicas, or raise maxQueue`, { details: { capability: group.text, maxQueue: this.options.maxQueue } }));
      return;
    }
    call.payload = settlePayload(call.payload);
    queue.push(call);
    this.queued++;
  }

  private enqueueBatched(call: PendingCall): void {
    const group = call.group;
    let queue = this.batchQueues.get(group.text);
    if (queue === undefined) {
      queue = new BatchQueue(group, this.batchDue);
      this.batchQueues.set(group.text, queue);
    } else queue.group = group; // the newest table's candidates
    if (queue.calls.size >= this.options.maxQueue) {
      this.fail(call, new CaphostError(ErrorCode.QUEUE_FULL, `the queue for "${group.text}" holds ${queue.calls.size} calls (maxQueue); retry later, add replicas, or raise maxQueue`, { details: { capability: group.text, maxQueue: this.options.maxQueue } }));
      return;
    }
    call.payload = settlePayload(call.payload);
    call.queuedAt = performance.now();
    queue.calls.push(call);
    this.batchQueued++;
    queue.lookSoon();
  }

  /** Sends batches from every batched queue that has calls, while replicas can take them. */
  private dispatchBatches(): void {
    for (const queue of this.batchQueues.values()) if (queue.calls.size > 0) this.dispatchBatchQueue(queue);
  }

  /** Forms and places batches from one queue by Triton's rule (decideBatch), or arranges to look again. */
  private dispatchBatchQueue(queue: BatchQueue): void {
    const calls = queue.calls;
    while (calls.size > 0) {
      const route = pickRoute(queue.group.candidates, this.batchLoadOf) as CapabilityRoute | undefined;
      if (route === undefined) return; // every replica is busy: a completion looks again
      const replica = this.replica(route.provider)!;
      const waitedUs = (performance.now() - calls.oldestQueuedAt()) * 1000;
      const decision = decideBatch(route.batch!, calls.size, waitedUs, replica.freeTicketCount);
      if (decision.size === 0) {
        if (decision.waitUs > 0) queue.lookIn(decision.waitUs);
        return;
      }
      if (this.placeBatch(queue.group, calls, route, replica, decision.size) === 0) return;
    }
    queue.cancel();
  }

  /** Places up to `size` calls, best first, as one batch on `replica`; returns how many it placed. */
  private placeBatch(group: RouteGroup, calls: CallQueue, route: CapabilityRoute, replica: Replica, size: number): number {
    const channel = replica.channel!;
    let placed = 0;
    channel.beginBatch();
    while (placed < size) {
      const call = calls.pop();
      if (call === undefined) break;
      this.batchQueued--;
      // A call whose tensors cannot be granted is settled with the reason and leaves the batch.
      if (call.tensors !== null && !this.grantTensors(call, replica)) continue;
      const ticket = replica.takeTicket(call);
      if (ticket < 0) {
        calls.push(call);
        this.batchQueued++;
        break;
      }
      call.state = CallState.RUNNING;
      call.route = route;
      call.provider = replica.provider;
      call.ticket = ticket;
      call.position = channel.nextPosition;
      if (!channel.placeInBatch(ticket, route.index, call.deadline, call.payload, call.refs, call.fromPeer)) {
        // Overflow space runs short: the batch goes out smaller, and the rest wait for the next.
        replica.releaseTicket(ticket, 0);
        calls.push(call);
        this.batchQueued++;
        break;
      }
      call.inBatch = true;
      if (this.observer !== null) call.placedAt = performance.now();
      placed++;
    }
    replica.batchLeft += placed;
    channel.endBatch();
    if (placed > 0 && this.observer !== null) this.observer.dispatched(group.text, placed);
    return placed;
  }

  /** Tries to place a call on the best replica with room. */
  private place(call: PendingCall): boolean {
    const route = pickRoute(call.group.candidates, this.loadOf) as CapabilityRoute | undefined;
    if (route === undefined) return false;
    const replica = this.replica(route.provider)!;
    const channel = replica.channel!;
    if (call.tensors !== null && !this.grantTensors(call, replica)) return true;
    const ticket = replica.takeTicket(call);
    if (ticket < 0) return false;
    const position = channel.nextPosition;
    call.state = CallState.RUNNING;
    call.route = route;
    call.provider = replica.provider;
    call.ticket = ticket;
    call.position = position;
    // Taken before placing: waking a parked worker is part of the call's compute time, not its queueing.
    if (this.observer !== null) call.placedAt = performance.now();
    if (!channel.place(ticket, route.index, call.deadline, call.payload, call.refs, call.fromPeer)) {
      replica.releaseTicket(ticket, replica.averageBusyNs);
      call.state = CallState.QUEUED;
      call.placedAt = 0;
      return false;
    }
    this.observer?.dispatched(call.group.text, 1);
    return true;
  }

  /** False when the grant failed and the call was settled with the reason. */
  private grantTensors(call: PendingCall, replica: Replica): boolean {
    try {
      const session = replica.deviceSession;
      if (session === null || this.options.tensors === undefined) {
        throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, `worker ${replica.label} has no device session, so the tensors of this "${call.group.text}" call cannot be granted to it`);
      }
      this.options.tensors.grant(call, session);
      return true;
    } catch (err) {
      this.fail(call, err instanceof CaphostError ? err : new CaphostError(ErrorCode.HANDLE_INVALID, String(err)));
      return false;
    }
  }

  /** Moves queued calls onto replicas while any has room. */
  private dispatchQueued(): void {
    for (;;) {
      let best: PendingCall | undefined;
      let bestQueue: CallQueue | undefined;
      for (const queue of this.queues.values()) {
        const head = queue.peek();
        if (head === undefined) continue;
        if (best !== undefined && (head.priority < best.priority || (head.priority === best.priority && head.seq > best.seq))) continue;
        if (pickRoute(head.group.candidates, this.loadOf) === undefined) continue;
        best = head;
        bestQueue = queue;
      }
      if (best === undefined) return;
      bestQueue!.pop();
      this.queued--;
      if (!this.place(best)) {
        bestQueue!.push(best);
        this.queued++;
        return;
      }
    }
  }

  sinkFor(replica: Replica): CompletionSink {
    return (message: SlotMessage, channel: ControllerChannel) => this.complete(replica, message, channel);
  }

  private complete(replica: Replica, message: SlotMessage, channel: ControllerChannel): void {
    // The ticket and the busy time come from the worker: out-of-range tickets are ignored (the
    // replica returns undefined), and a busy time that is not a positive finite number is not a sample.
    const time = message.time;
    const call = replica.releaseTicket(message.ticket, time > 0 && time < Infinity ? time : 0);
    let output: unknown;
    let error: CaphostError | undefined;
    if (call !== undefined && call.state === CallState.RUNNING) {
      try {
        // Arena references are honoured only from a provider that shares the arena (a thread
        // worker): a process worker could otherwise name any range of it, other callers' buffers included.
        const route = call.route!;
        const arena = route.sharesArena ? this.options.arena : null;
        if (message.kind === Status.OK) {
          if (call.outputBytes) output = this.encodedOutput(route, message, arena, replica);
          else {
            output = route.schema.output.decode(message.bytes, message.start, message.length, message.refs, arena);
            if (route.schema.output.hasTensors) this.adoptTensors(route.schema.output.deviceTensorsOf(output as Record<string, unknown>), replica);
          }
        } else error = errorFromRecord(message.bytes.toString('utf8', message.start, message.start + message.length), call.group.text);
      } catch (err) {
        error = err instanceof CaphostError ? err : new CaphostError(ErrorCode.SCHEMA_MISMATCH, `${call.group.text} output could not be decoded: ${(err as Error).message}`);
      }
    }
    channel.release();
    if (call !== undefined && call.state === CallState.RUNNING) {
      if (error !== undefined) this.fail(call, error);
      else if (call.resolve(output)) {
        call.counters!.ok++;
        if (this.observer !== null) this.observe(call, 'OK');
      }
    }
    if (this.queued > 0) this.dispatchQueued();
    if (this.batchQueued > 0 && replica.batchLeft === 0) this.dispatchBatches();
  }

  /**
   * The output of an `outputBytes` call: the slot's bytes copied as they are when they are the
   * whole message; decoded and encoded again only when arena references or tensors need inlining.
   */
  private encodedOutput(route: CapabilityRoute, message: SlotMessage, arena: SharedArrayBuffer | null, replica: Replica): Uint8Array {
    const codec = route.schema.output;
    if (message.refs === null && !codec.hasTensors) {
      const bytes = Buffer.allocUnsafe(message.length);
      message.bytes.copy(bytes, 0, message.start, message.start + message.length);
      return bytes;
    }
    const value = codec.decode(message.bytes, message.start, message.length, message.refs, arena);
    if (codec.hasTensors) this.adoptTensors(codec.deviceTensorsOf(value), replica);
    return codec.encode(value, null).bytes.finish();
  }

  private adoptTensors(tensors: readonly DeviceTensor[], replica: Replica): void {
    if (tensors.length === 0) return;
    if (this.options.tensors === undefined || replica.deviceSession === null) {
      throw new CaphostError(ErrorCode.HANDLE_DENIED, `worker ${replica.label} returned device tensors but holds no device session`);
    }
    this.options.tensors.adopt(tensors, replica.deviceSession);
  }

  /** Deadline or cancel: settles the call now and tells its worker, wherever it is. */
  private abort(call: PendingCall, reason: number): void {
    if (call.settled) return;
    const what = call.group.text;
    const error =
      reason === CancelReason.DEADLINE
        ? new CaphostError(ErrorCode.DEADLINE_EXCEEDED, `the deadline of this "${what}" call (${call.deadlineMs} ms) passed ${call.state === CallState.QUEUED ? 'while it was queued' : 'while it was running'}; allow more time, or add replicas if calls wait in the queue`, { details: { capability: what, state: call.state === CallState.QUEUED ? 'queued' : 'running' } })
        : new CaphostError(ErrorCode.CANCELLED, `the caller cancelled this "${what}" call`, { details: { capability: what }, cause: call.signal?.reason });
    if (call.state === CallState.QUEUED) {
      const batched = call.group.batched;
      const queue = batched ? this.batchQueues.get(call.group.text)?.calls : this.queues.get(call.group.text);
      if (queue !== undefined && call.heapIndex >= 0) {
        queue.remove(call);
        if (batched) this.batchQueued--;
        else this.queued--;
      }
      this.fail(call, error);
      return;
    }
    const replica = this.replica(call.provider);
    this.fail(call, error);
    if (replica?.channel != null) {
      replica.channel.cancel(call.position, reason);
      const ticket = call.ticket;
      const timer = setTimeout(() => {
        if (replica.holds(ticket, call)) this.options.recycle(replica, `a ${what} handler ignored its aborted signal for ${this.options.abortGraceMs} ms`);
      }, this.options.abortGraceMs);
      timer.unref();
    }
  }

  /** The caller gave up on `call` (CANCELLED): settles it now and tells its worker. No effect once settled. */
  cancel(call: PendingCall): void {
    this.abort(call, CancelReason.CANCELLED);
  }

  /**
   * The worker of `replica` is gone. Calls it never took off the ring go back to the queue (they
   * did not start, so another replica may run them); the rest fail with WORKER_CRASHED.
   */
  replicaDown(replica: Replica, cause: CaphostError, code: ErrorCode = ErrorCode.WORKER_CRASHED): void {
    const consumed = replica.channel?.consumedPosition ?? 0;
    replica.channel?.close();
    const held = replica.detach();
    held.sort((a, b) => a.seq - b.seq);
    for (const call of held) {
      if (call.state !== CallState.RUNNING) continue;
      if (code === ErrorCode.WORKER_CRASHED && ((call.position - consumed) | 0) >= 0) {
        call.route = undefined;
        call.provider = -1;
        call.inBatch = false;
        call.placedAt = 0;
        this.enqueue(call);
      } else if (code !== ErrorCode.WORKER_CRASHED) {
        this.fail(call, new CaphostError(code, cause.message, { details: { capability: call.group.text, worker: replica.label } }));
      } else {
        this.fail(call, new CaphostError(ErrorCode.WORKER_CRASHED, `the worker running this "${call.group.text}" call stopped: ${cause.message}`, { cause, details: { capability: call.group.text, worker: replica.label } }));
      }
    }
    if (replica.failed) this.failUnavailable();
  }

  /** A replica has a running worker again: give it queued work. */
  replicaUp(): void {
    if (this.queued > 0) this.dispatchQueued();
    if (this.batchQueued > 0) this.dispatchBatches();
  }

  /** Queued calls that no live or restartable replica can serve fail now rather than at their deadline. */
  private failUnavailable(): void {
    for (const queue of this.queues.values()) {
      const group = queue.peek()?.group;
      if (group === undefined || !group.candidates.every((route) => this.replica(route.provider)?.failed ?? true)) continue;
      for (const call of queue.drainAll()) {
        this.queued--;
        this.fail(call, new CaphostError(ErrorCode.CAPABILITY_UNAVAILABLE, `every worker providing "${group.text}" has failed and cannot be restarted; see the controller log for why`, { details: { capability: group.text } }));
      }
    }
    for (const queue of this.batchQueues.values()) {
      const group = queue.group;
      if (!group.candidates.every((route) => this.replica(route.provider)?.failed ?? true)) continue;
      queue.cancel();
      for (const call of queue.calls.drainAll()) {
        this.batchQueued--;
        this.fail(call, new CaphostError(ErrorCode.CAPABILITY_UNAVAILABLE, `every worker providing "${group.text}" has failed and cannot be restarted; see the controller log for why`, { details: { capability: group.text } }));
      }
    }
  }

  /** Rejects every queued call (used by close once draining is over). */
  rejectQueued(error: () => CaphostError): void {
    for (const queue of this.queues.values()) {
      for (const call of queue.drainAll()) {
        this.queued--;
        this.fail(call, error());
      }
    }
    for (const queue of this.batchQueues.values()) {
      queue.cancel();
      for (const call of queue.calls.drainAll()) {
        this.batchQueued--;
        this.fail(call, error());
      }
    }
  }

  private fail(call: PendingCall, error: CaphostError): void {
    if (call.reject(error)) {
      const errors = (call.counters ?? this.count(call.group.text)).errors;
      errors[error.code] = (errors[error.code] ?? 0) + 1;
      if (this.observer !== null) this.observe(call, error.code);
    }
  }

  private observe(call: PendingCall, outcome: 'OK' | ErrorCode): void {
    // A call submitted before the observer was set has no start time; it is not a sample.
    if (call.submittedAt === 0) return;
    const now = performance.now();
    const placed = call.placedAt > 0;
    this.observer!.settled(call.group.text, outcome, (placed ? call.placedAt : now) - call.submittedAt, placed ? now - call.placedAt : 0, now - call.submittedAt);
  }

  private count(text: string): CapabilityCounters {
    let counters = this.counters.get(text);
    if (counters === undefined) {
      counters = { submitted: 0, ok: 0, errors: {} };
      this.counters.set(text, counters);
    }
    return counters;
  }

  get queuedCalls(): number {
    return this.queued + this.batchQueued;
  }

  stats(): { capabilities: Record<string, CapabilityCounters & { queued: number }>; queued: number } {
    const capabilities: Record<string, CapabilityCounters & { queued: number }> = {};
    for (const [text, counters] of this.counters) {
      const queued = (this.queues.get(text)?.size ?? 0) + (this.batchQueues.get(text)?.calls.size ?? 0);
      capabilities[text] = { ...counters, errors: { ...counters.errors }, queued };
    }
    return { capabilities, queued: this.queued + this.batchQueued };
  }

  close(): void {
    this.deadlines.close();
    for (const queue of this.batchQueues.values()) queue.cancel();
  }
}

function errorFromRecord(text: string, capability: string): CaphostError {
  try {
    const record = JSON.parse(text) as { code?: unknown; message?: unknown; details?: unknown };
    const code = isErrorCode(record.code) ? record.code : ErrorCode.HANDLER_ERROR;
    const details = record.details !== null && typeof record.details === 'object' ? { ...(record.details as Record<string, unknown>), capability } : { capability };
    return new CaphostError(code, String(record.message), { details });
  } catch {
    return new CaphostError(ErrorCode.HANDLER_ERROR, `the worker serving "${capability}" sent an error that could not be read`);
  }
}
