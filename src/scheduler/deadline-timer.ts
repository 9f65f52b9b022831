import type { PendingCall } from './pending-call.js';

/** What the timer needs of a call: its absolute deadline (epoch ms) and whether it settled. */
export interface Deadlined {
  readonly deadline: number;
  readonly settled: boolean;
}

/**
 * One timer for every deadline: a min-heap of calls by deadline and a single setTimeout armed
 * for the earliest. Settled calls are dropped when they surface, so settling costs nothing here.
 */
export class DeadlineTimer<T extends Deadlined = PendingCall> {
  private readonly heap: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private compactAt = 4096;

  constructor(private readonly expire: (call: T) => void) {}

  add(call: T): void {
    if (this.heap.length >= this.compactAt) this.compact();
    const heap = this.heap;
    let i = heap.length;
    heap.push(call);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.deadline <= call.deadline) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = call;
    if (call.deadline < this.armedFor) this.arm();
  }

  /** Calls mostly settle long before their deadline; drop them in bulk so the heap tracks live calls. */
  private compact(): void {
    const live = this.heap.filter((call) => !call.settled).sort((a, b) => a.deadline - b.deadline);
    this.heap.length = 0;
    for (const call of live) this.heap.push(call);
    this.compactAt = Math.max(4096, live.length * 2);
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0]!.settled) this.pop();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    const first = this.heap[0];
    if (first === undefined) return;
    this.armedFor = first.deadline;
    this.timer = setTimeout(this.fire, Math.max(0, first.deadline - Date.now()));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    while (this.heap.length > 0 && this.heap[0]!.deadline <= now) {
      const call = this.pop();
      if (!call.settled) this.expire(call);
    }
    this.arm();
  };

  private pop(): T {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const child = r < n && heap[r]!.deadline < heap[l]!.deadline ? r : l;
        if (heap[child]!.deadline >= last.deadline) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
    this.armedFor = Infinity;
  }
}
