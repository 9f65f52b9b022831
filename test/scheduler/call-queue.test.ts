import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RouteGroup } from '../../src/router/capability-registry.js';
import { CallQueue } from '../../src/scheduler/call-queue.js';
import { CallState, PendingCall } from '../../src/scheduler/pending-call.js';
import { mulberry32 } from '../support/prng.js';


const group: RouteGroup = { text: 'echo@1', request: { name: 'echo', major: 1, minor: undefined }, candidates: [], sharesArena: true, batched: false };
const noop = (): void => {};

function call(priority: number, seq: number): PendingCall {
  return new PendingCall(group, new Uint8Array(0), null, priority, seq, 0, 0, undefined, noop, noop);
}

/** Reference order: higher priority first, then lower seq. */
const order = (a: PendingCall, b: PendingCall): number => b.priority - a.priority || a.seq - b.seq;

describe('CallQueue', () => {
  it('pops higher priority first', () => {
    const q = new CallQueue();
    for (const [p, s] of [[0, 1], [5, 2], [-3, 3], [2, 4], [5, 5], [10, 6]] as const) q.push(call(p, s));
    assert.deepEqual(q.drainAll().map((c) => [c.priority, c.seq]), [[10, 6], [5, 2], [5, 5], [2, 4], [0, 1], [-3, 3]]);
    assert.equal(q.size, 0);
  });

  it('is FIFO by seq within a priority, whatever the push order', () => {
    const q = new CallQueue();
    for (const s of [9, 3, 7, 1, 5, 2, 8]) q.push(call(1, s));
    assert.deepEqual(q.drainAll().map((c) => c.seq), [1, 2, 3, 5, 7, 8, 9]);
  });

  it('tracks state, size, peek and heapIndex', () => {
    const q = new CallQueue();
    assert.equal(q.peek(), undefined);
    assert.equal(q.pop(), undefined);
    const a = call(1, 1);
    a.state = CallState.RUNNING;
    q.push(a);
    assert.equal(a.state, CallState.QUEUED);
    assert.equal(a.heapIndex, 0);
    const b = call(2, 2);
    q.push(b);
    assert.equal(q.size, 2);
    assert.equal(q.peek(), b);
    assert.equal(q.pop(), b);
    assert.equal(b.heapIndex, -1);
    assert.equal(q.size, 1);
  });

  it('remove() of a call not in the queue is a no-op', () => {
    const q = new CallQueue();
    const a = call(1, 1);
    const b = call(1, 2);
    q.push(a);
    q.remove(b);
    assert.equal(q.size, 1);
    q.remove(a);
    q.remove(a);
    assert.equal(q.size, 0);
    assert.equal(a.heapIndex, -1);
    // A call from another queue whose heapIndex collides is not removed here.
    const other = new CallQueue();
    const c = call(1, 3);
    other.push(c);
    q.push(call(1, 4));
    q.remove(c);
    assert.equal(q.size, 1);
    assert.equal(other.size, 1);
  });

  it('remove() from the middle keeps the heap valid', () => {
    const q = new CallQueue();
    const calls = [[3, 1], [1, 2], [4, 3], [1, 4], [5, 5], [9, 6], [2, 7], [6, 8]].map(([p, s]) => call(p!, s!));
    for (const c of calls) q.push(c);
    q.remove(calls[2]!);
    q.remove(calls[6]!);
    assert.deepEqual(q.drainAll().map((c) => c.seq), [6, 8, 5, 1, 2, 4]);
  });

  it('matches a sorted-array model under random push/pop/remove (seeded)', () => {
    const random = mulberry32(42);
    const q = new CallQueue();
    let model: PendingCall[] = [];
    let seq = 0;
    for (let step = 0; step < 20000; step++) {
      const r = random();
      if (r < 0.45 || model.length === 0) {
        const c = call(Math.floor(random() * 5) - 2, seq++);
        q.push(c);
        model.push(c);
      } else if (r < 0.7) {
        model.sort(order);
        const expected = model.shift();
        assert.equal(q.pop(), expected, `step ${step}`);
      } else {
        const victim = model.splice(Math.floor(random() * model.length), 1)[0]!;
        q.remove(victim);
        assert.equal(victim.heapIndex, -1);
      }
      assert.equal(q.size, model.length);
      if (model.length > 0) {
        model.sort(order);
        assert.equal(q.peek(), model[0], `peek at step ${step}`);
      }
      if (step % 97 === 0) {
        // Every queued call knows its own index.
        for (const c of model) assert.ok(c.heapIndex >= 0, `heapIndex of seq ${c.seq}`);
        assert.equal(new Set(model.map((c) => c.heapIndex)).size, model.length);
      }
    }
    model.sort(order);
    assert.deepEqual(q.drainAll(), model);
  });
});
