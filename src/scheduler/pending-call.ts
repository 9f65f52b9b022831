import type { CaphostError } from '../errors.js';
import type { DeviceTensor } from '../device/device-tensor.js';
import type { CapabilityRoute, RouteGroup } from '../router/capability-registry.js';
import type { Payload } from './payload.js';
import type { ArenaRef } from './slot-ring.js';

export const CallState = {
  QUEUED: 0,
  RUNNING: 1,
  SETTLED: 2,
} as const;
export type CallState = (typeof CallState)[keyof typeof CallState];

/**
 * One call from submission to settlement. `settle*` are the only way out, and they check the
 * state, so a call settles exactly once whatever races (completion, deadline, cancel, crash).
 */
export class PendingCall {
  state: CallState = CallState.QUEUED;
  /** The route it was placed on, once placed. */
  route: CapabilityRoute | undefined;
  /** Provider id of the replica holding it while RUNNING. */
  provider = -1;
  ticket = -1;
  /** Ring position of its request while RUNNING. */
  position = 0;
  /** Index in its queue's heap while QUEUED (-1 otherwise). */
  heapIndex = -1;
  /** Stops watching its signal; set by the scheduler when it watches one. */
  unwatch: ((call: PendingCall) => void) | undefined;
  /** When it entered a batched queue (performance.now() ms); batching waits are measured from it. */
  queuedAt = 0;
  /** Placed as a member of a batch: its completion counts down its replica's batch. */
  inBatch = false;
  /** Device tensors in its input: granted to each worker it is placed on, revoked when it settles. */
  tensors: readonly DeviceTensor[] | null = null;
  /** Sessions its tensors were granted to. */
  grantedTo: string[] | null = null;
  /** Revokes the grants; set by whoever made them. */
  onSettle: ((call: PendingCall) => void) | undefined;
  /** The outcome counters of its capability request, set when submitted. */
  counters: { submitted: number; ok: number; errors: Record<string, number> } | undefined;
  /**
   * Resolve with the output's encoded bytes (a private copy; arena views and tensors inlined)
   * instead of the decoded message: for a caller that only sends them on (the mesh serving a
   * peer), which then skips a decode and an encode.
   */
  outputBytes = false;
  /**
   * A mesh peer's call: its caller's next request is at least a network round trip away, so the
   * worker spins for it briefly (64 µs at most), not for up to 2 ms (see WorkerLoop.peerSpin).
   */
  fromPeer = false;
  /** performance.now() at submission and at placement, recorded only while a CallObserver watches. */
  submittedAt = 0;
  placedAt = 0;

  constructor(
    readonly group: RouteGroup,
    /** The encoded input; snapshotted to bytes if the call has to wait in a queue. */
    public payload: Payload,
    readonly refs: readonly ArenaRef[] | null,
    readonly priority: number,
    readonly seq: number,
    /** Absolute deadline in epoch ms, 0 when none. */
    readonly deadline: number,
    /** The deadline as the caller gave it, in ms from the call (for messages). */
    readonly deadlineMs: number,
    readonly signal: AbortSignal | undefined,
    private readonly resolveFn: (value: unknown) => void,
    private readonly rejectFn: (error: CaphostError) => void,
  ) {}

  get settled(): boolean {
    return this.state === CallState.SETTLED;
  }

  resolve(value: unknown): boolean {
    if (this.state === CallState.SETTLED) return false;
    this.finish();
    this.resolveFn(value);
    return true;
  }

  reject(error: CaphostError): boolean {
    if (this.state === CallState.SETTLED) return false;
    this.finish();
    this.rejectFn(error);
    return true;
  }

  private finish(): void {
    this.state = CallState.SETTLED;
    if (this.onSettle !== undefined) this.onSettle(this);
    if (this.unwatch !== undefined) {
      this.unwatch(this);
      this.unwatch = undefined;
    }
  }
}
