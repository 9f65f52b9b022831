import { CaphostError, ErrorCode } from '../errors.js';

/**
 * Why a remote attempt failed without running, or may have run: the router retries an
 * undelivered call anywhere, a lost one only when its capability is idempotent.
 */
export const RemoteFailure = {
  /** The request reached no node (no responders, the node left, the mesh connection is down). */
  UNDELIVERED: 'undelivered',
  /** The node holding the call was lost (killed, partitioned) while it ran: it may or may not have run. */
  LOST: 'lost',
} as const;
export type RemoteFailure = (typeof RemoteFailure)[keyof typeof RemoteFailure];

export class RemoteAttemptError extends Error {
  constructor(
    readonly failure: RemoteFailure,
    readonly node: string,
    message: string,
    /** The code the caller sees when the call is not retried. */
    readonly code: ErrorCode = ErrorCode.WORKER_CRASHED,
  ) {
    super(message);
  }
}

/**
 * One attempt of a call on one remote node. `settle` is the only way out: a reply, the deadline,
 * the caller's signal, or the node's loss, whichever comes first; the rest find it settled.
 * Its deadline is watched by the node's one DeadlineTimer (no timer per call).
 */
export class RemoteCall {
  #done = false;
  #onAbort: (() => void) | undefined;
  #signal: AbortSignal | undefined;

  constructor(
    readonly id: number,
    readonly node: string,
    readonly capability: string,
    /** Absolute deadline in epoch ms, 0 when none. */
    readonly deadline: number,
    /** The deadline as the caller gave it, in ms (for the message). */
    private readonly deadlineMs: number,
    private readonly resolveFn: (output: Uint8Array) => void,
    private readonly rejectFn: (error: Error) => void,
    /** Called once when settled, to drop it from the tables that hold it. */
    private readonly release: (call: RemoteCall) => void,
  ) {}

  get settled(): boolean {
    return this.#done;
  }

  /** Settles with DEADLINE_EXCEEDED; false if it had settled already (then the node need not be told). */
  expire(): boolean {
    return this.reject(new CaphostError(ErrorCode.DEADLINE_EXCEEDED, `the deadline of this "${this.capability}" call (${this.deadlineMs} ms) passed while node ${this.node} ran it; allow more time, or add nodes`, { details: { capability: this.capability, node: this.node, state: 'running' } }));
  }

  /** Settles with CANCELLED when `signal` aborts and calls `onCancel` (to tell the node). */
  cancelWith(signal: AbortSignal, onCancel: () => void): void {
    this.#onAbort = () => {
      if (this.reject(new CaphostError(ErrorCode.CANCELLED, `the caller cancelled this "${this.capability}" call`, { details: { capability: this.capability, node: this.node }, cause: signal.reason }))) onCancel();
    };
    this.#signal = signal;
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  resolve(output: Uint8Array): boolean {
    if (!this.#finish()) return false;
    this.resolveFn(output);
    return true;
  }

  reject(error: Error): boolean {
    if (!this.#finish()) return false;
    this.rejectFn(error);
    return true;
  }

  #finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    if (this.#onAbort !== undefined) this.#signal!.removeEventListener('abort', this.#onAbort);
    this.release(this);
    return true;
  }
}
