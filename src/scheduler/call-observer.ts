import type { ErrorCode } from '../errors.js';

/**
 * What the scheduler tells a watcher (metrics) about calls. Arguments are positional so that
 * watching costs no allocation per call. Times are in milliseconds from performance.now().
 */
export interface CallObserver {
  /**
   * A call settled. `queueMs`: from submission until it was placed on a worker's ring (its whole
   * life if it never was); `computeMs`: from that placement until it settled (ring, handler and
   * the way back), 0 if never placed; `totalMs`: submission to settlement.
   */
  settled(capability: string, outcome: 'OK' | ErrorCode, queueMs: number, computeMs: number, totalMs: number): void;
  /** `size` calls of `capability` were handed to one worker together. */
  dispatched(capability: string, size: number): void;
}
