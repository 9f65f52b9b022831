/**
 * How a side of a channel parks on a word and how the other side wakes it. Within a process the
 * words live in a SharedArrayBuffer and Atomics does it; across processes the words live in a
 * shared mapping and the futex syscall does it (src/isolation/futex-wake.ts).
 */
export interface Wake {
  /** Blocks until `words[index]` is not `expected`, a notify, or `timeoutMs` passes. */
  wait(words: Int32Array, index: number, expected: number, timeoutMs?: number): void;
  /** Settles when `words[index]` is not `expected`, on a notify, or after `timeoutMs`; null if it already differs. */
  waitAsync(words: Int32Array, index: number, expected: number, timeoutMs?: number): Promise<unknown> | null;
  /** Wakes every waiter on `words[index]`. */
  notify(words: Int32Array, index: number): void;
}

export const atomicsWake: Wake = {
  wait(words, index, expected, timeoutMs) {
    Atomics.wait(words, index, expected, timeoutMs);
  },
  waitAsync(words, index, expected, timeoutMs) {
    const result = Atomics.waitAsync(words, index, expected, timeoutMs);
    return result.async ? result.value : null;
  },
  notify(words, index) {
    Atomics.notify(words, index);
  },
};
