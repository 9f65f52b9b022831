import type { BatchPolicy } from '../router/batch-policy.js';

/** What to do with a batched queue now: send `size` calls, or (size 0) look again in `waitUs`. */
export interface BatchDecision {
  size: number;
  waitUs: number;
}

/**
 * Triton's rule, as a pure function. `queued` calls wait, the oldest for `waitedUs`, and a free
 * replica can take at most `room` of them.
 * 1. When the queue holds the largest preferred size (maxSize when none are listed), send that many.
 * 2. Otherwise, while the oldest call is within its delay, send the largest preferred size the queue fills, if any.
 * 3. Otherwise, with no delay or once it is exceeded, send everything (up to maxSize).
 * 4. Otherwise wait for the rest of the delay (or for more calls).
 */
export function decideBatch(policy: BatchPolicy, queued: number, waitedUs: number, room: number): BatchDecision {
  const max = Math.min(policy.maxSize, room);
  if (queued <= 0 || max <= 0) return { size: 0, waitUs: 0 };
  const preferred = policy.preferredSizes;
  let largestPreferred = 0;
  for (let i = preferred.length - 1; i >= 0; i--) {
    if (preferred[i]! <= max) {
      largestPreferred = preferred[i]!;
      break;
    }
  }
  const target = largestPreferred > 0 ? largestPreferred : max;
  if (queued >= target) return { size: target, waitUs: 0 };
  const delay = policy.maxQueueDelayUs;
  const exceeded = delay === 0 || waitedUs >= delay;
  if (!exceeded || delay === 0) {
    for (let i = preferred.length - 1; i >= 0; i--) {
      const size = preferred[i]!;
      if (size <= queued && size <= max) return { size, waitUs: 0 };
    }
  }
  if (exceeded) return { size: Math.min(queued, max), waitUs: 0 };
  return { size: 0, waitUs: delay - waitedUs };
}
