import type { RouteGroup } from '../router/capability-registry.js';
import { CallQueue } from './call-queue.js';

/**
 * The queue of one batched capability request, and its one pending look: a microtask after calls
 * arrive (so calls submitted together form one batch), or a timer when the oldest call's queue
 * delay runs out.
 */
export class BatchQueue {
  readonly calls = new CallQueue();
  private microtask = false;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly due = (): void => {
    this.microtask = false;
    this.timer = undefined;
    this.immediate = undefined;
    this.onDue(this);
  };

  constructor(
    /** The request's group as the routing table last gave it (the scheduler updates it). */
    public group: RouteGroup,
    private readonly onDue: (queue: BatchQueue) => void,
  ) {}

  /** Looks again once the calls being submitted now have joined. */
  lookSoon(): void {
    if (this.microtask) return;
    this.microtask = true;
    queueMicrotask(this.due);
  }

  /**
   * Looks again in `us` microseconds. Node's timers fire a millisecond late or more, so the last
   * two milliseconds are waited by looking on each turn of the event loop, which keeps the delay
   * a call waits close to the policy's promise.
   */
  lookIn(us: number): void {
    this.cancel();
    if (us >= 2000) {
      this.timer = setTimeout(this.due, Math.floor(us / 1000) - 1);
    } else {
      this.immediate = setImmediate(this.due);
    }
  }

  /** Drops a pending timer (the queue emptied, or the scheduler closed). */
  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }
}
