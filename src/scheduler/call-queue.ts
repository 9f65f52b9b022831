import { CallState, type PendingCall } from './pending-call.js';

/** Higher priority first; within a priority, first come first served. */
function before(a: PendingCall, b: PendingCall): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
}

/** A binary heap of queued calls for one capability request, with removal by index. */
export class CallQueue {
  private readonly heap: PendingCall[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): PendingCall | undefined {
    return this.heap[0];
  }

  push(call: PendingCall): void {
    call.state = CallState.QUEUED;
    call.heapIndex = this.heap.length;
    this.heap.push(call);
    this.up(call.heapIndex);
  }

  pop(): PendingCall | undefined {
    const top = this.heap[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes a call that left the queue early (deadline, cancel). */
  remove(call: PendingCall): void {
    const i = call.heapIndex;
    if (i >= 0 && this.heap[i] === call) this.removeAt(i);
  }

  /** The earliest queuedAt among the queued calls (Infinity when empty). */
  oldestQueuedAt(): number {
    let oldest = Infinity;
    for (const call of this.heap) if (call.queuedAt < oldest) oldest = call.queuedAt;
    return oldest;
  }

  /** Empties the queue, returning its calls in priority order. */
  drainAll(): PendingCall[] {
    const out: PendingCall[] = [];
    for (let call = this.pop(); call !== undefined; call = this.pop()) out.push(call);
    return out;
  }

  private removeAt(i: number): void {
    const removed = this.heap[i]!;
    removed.heapIndex = -1;
    const last = this.heap.pop()!;
    if (i < this.heap.length) {
      this.heap[i] = last;
      last.heapIndex = i;
      this.up(i);
      this.down(last.heapIndex);
    }
  }

  private up(i: number): void {
    const heap = this.heap;
    const item = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      heap[i].heapIndex = i;
      i = parent;
    }
    heap[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[child]!, item)) break;
      heap[i] = heap[child]!;
      heap[i].heapIndex = i;
      i = child;
    }
    heap[i] = item;
    item.heapIndex = i;
  }
}
