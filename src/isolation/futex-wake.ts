/**
 * The Wake of a process worker's channel. Its words live in a memfd (Linux) or shm (macOS)
 * mapping, a plain ArrayBuffer: Atomics.load/store/compareExchange work on it, but
 * Atomics.wait/waitAsync/notify only act on SharedArrayBuffers of one process, so parking and
 * waking go through the kernel's shared futex (__ulock on macOS) in native/core instead.
 */
import { loadCoreBinding, type CoreBinding } from '../native/core-binding.js';
import type { Wake } from '../scheduler/wake.js';

let core: CoreBinding | undefined;
const binding = (): CoreBinding => (core ??= loadCoreBinding());

/** The byte offset handed to native code is relative to the view, so any view into the mapping works. */
export const futexWake: Wake = {
  wait(words, index, expected, timeoutMs) {
    binding().futexWait(words, index * 4, expected, timeoutMs);
  },
  waitAsync(words, index, expected, timeoutMs?: number) {
    // Each async wait parks a native thread; skip it when there is nothing to wait for.
    if (Atomics.load(words, index) !== expected) return null;
    return binding().futexWaitAsync(words, index * 4, expected, timeoutMs);
  },
  notify(words, index) {
    binding().futexWake(words, index * 4);
  },
};

/**
 * A worker-side Wake that never parks for longer than `checkMs` before calling `check`. A
 * process worker parks in a blocking futex wait with its event loop stopped, so it would never
 * hear its IPC channel close if the controller died; `check` is where it looks for that (its
 * parent pid changes) and exits. A wait that returns early is harmless: the loop re-checks its
 * words and parks again.
 */
export function watchedWake(inner: Wake, checkMs: number, check: () => void): Wake {
  return {
    wait(words, index, expected, timeoutMs) {
      const bounded = timeoutMs === undefined || timeoutMs > checkMs ? checkMs : timeoutMs;
      inner.wait(words, index, expected, bounded);
      check();
    },
    waitAsync: (words, index, expected, timeoutMs?: number) => inner.waitAsync(words, index, expected, timeoutMs),
    notify: (words, index) => inner.notify(words, index),
  };
}
