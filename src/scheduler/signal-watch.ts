import type { PendingCall } from './pending-call.js';

/**
 * One 'abort' listener per AbortSignal, however many calls share it: the calls of one HTTP
 * connection share its disconnect signal, and EventTarget's add and remove cost more than the
 * rest of a call's bookkeeping. The listener stays on the signal for as long as the signal lives.
 */
export class SignalWatch {
  readonly #calls = new WeakMap<AbortSignal, Set<PendingCall>>();

  constructor(private readonly onAbort: (call: PendingCall) => void) {}

  /** Watches `call.signal` (set) for `call` until unwatch(call). */
  watch(call: PendingCall): void {
    const signal = call.signal!;
    let calls = this.#calls.get(signal);
    if (calls === undefined) {
      const watched = (calls = new Set());
      this.#calls.set(signal, watched);
      signal.addEventListener(
        'abort',
        () => {
          const aborted = [...watched];
          watched.clear();
          for (const c of aborted) this.onAbort(c);
        },
        { once: true },
      );
    }
    calls.add(call);
  }

  readonly unwatch = (call: PendingCall): void => {
    this.#calls.get(call.signal!)?.delete(call);
  };
}
