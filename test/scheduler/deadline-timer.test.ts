import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { CaphostError, ErrorCode } from '../../src/errors.js';
import type { RouteGroup } from '../../src/router/capability-registry.js';
import { DeadlineTimer } from '../../src/scheduler/deadline-timer.js';
import { PendingCall } from '../../src/scheduler/pending-call.js';
import { mulberry32 } from '../support/prng.js';


const group: RouteGroup = { text: 'echo@1', request: { name: 'echo', major: 1, minor: undefined }, candidates: [], sharesArena: true, batched: false };
const noop = (): void => {};

function call(deadline: number, seq = 0): PendingCall {
  return new PendingCall(group, new Uint8Array(0), null, 0, seq, deadline, 0, undefined, noop, noop);
}

/** Polls until `done()` (or fails after `ms`), so a loaded machine only makes the test slower. */
async function until(done: () => boolean, ms = 1500): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    assert.ok(Date.now() < end, 'timed out waiting');
    await sleep(2);
  }
}

/** Sleeps until the wall clock has passed `t` (epoch ms). */
const sleepPast = (t: number): Promise<unknown> => sleep(Math.max(1, t - Date.now() + 1));

const timeout = (): CaphostError => new CaphostError(ErrorCode.DEADLINE_EXCEEDED, 'deadline');

/** A timer whose expire settles the call (as the scheduler does) and records it. */
function recording() {
  const expired: Array<{ call: PendingCall; at: number }> = [];
  const timer = new DeadlineTimer((c) => {
    assert.equal(c.settled, false, 'expire is never called for a settled call');
    expired.push({ call: c, at: Date.now() });
    c.reject(timeout());
  });
  return { timer, expired };
}

describe('DeadlineTimer', () => {
  it('expires calls in deadline order, not before their deadline', async () => {
    const { timer, expired } = recording();
    const now = Date.now();
    const calls = [call(now + 30, 1), call(now + 10, 2), call(now + 20, 3), call(now + 10, 4), call(now + 5, 5)];
    for (const c of calls) timer.add(c);
    assert.equal(expired.length, 0, 'never synchronously inside add');
    await until(() => expired.length === calls.length);
    await sleep(10);
    assert.equal(expired.length, calls.length, 'each call expires once');
    assert.deepEqual(expired.map((e) => e.call.seq).slice(0, 1), [5]);
    assert.deepEqual(new Set(expired.slice(1, 3).map((e) => e.call.seq)), new Set([2, 4]));
    assert.deepEqual(expired.slice(3).map((e) => e.call.seq), [3, 1]);
    for (const e of expired) assert.ok(e.at >= e.call.deadline, `seq ${e.call.seq} expired ${e.call.deadline - e.at} ms early`);
    timer.close();
  });

  it('expires a deadline already past on the next turn', async () => {
    const { timer, expired } = recording();
    timer.add(call(Date.now() - 100, 1));
    assert.equal(expired.length, 0, 'never synchronously inside add');
    await until(() => expired.length > 0);
    assert.deepEqual(expired.map((e) => e.call.seq), [1]);
    timer.close();
  });

  it('skips calls settled before their deadline, including the earliest one', async () => {
    const { timer, expired } = recording();
    const now = Date.now();
    const a = call(now + 5, 1);
    const b = call(now + 15, 2);
    const c = call(now + 25, 3);
    timer.add(a);
    timer.add(b);
    timer.add(c);
    a.resolve('done');
    c.reject(new CaphostError(ErrorCode.CANCELLED, 'cancelled'));
    await until(() => expired.length > 0);
    await sleepPast(c.deadline + 10);
    assert.deepEqual(expired.map((e) => e.call.seq), [2]);
    timer.close();
  });

  it('re-arms for an earlier call added later', async () => {
    const { timer, expired } = recording();
    const now = Date.now();
    timer.add(call(now + 1000, 1));
    timer.add(call(now + 10, 2));
    await until(() => expired.length > 0);
    await sleep(10);
    assert.deepEqual(expired.map((e) => e.call.seq), [2]);
    timer.close();
  });

  it('handles calls added from inside expire', async () => {
    const expired: number[] = [];
    const timer = new DeadlineTimer((c) => {
      expired.push(c.seq);
      c.reject(timeout());
      if (c.seq < 3) timer.add(call(Date.now() + 5, c.seq + 1));
    });
    timer.add(call(Date.now() + 5, 1));
    await until(() => expired.length >= 3);
    await sleep(15);
    assert.deepEqual(expired, [1, 2, 3]);
    timer.close();
  });

  it('compacts thousands of settled calls and still expires exactly the live ones, in order', async () => {
    const random = mulberry32(2024);
    const { timer, expired } = recording();
    const base = Date.now() + 40;
    const live: PendingCall[] = [];
    const all: PendingCall[] = [];
    for (let i = 0; i < 12000; i++) {
      const c = call(base + Math.floor(random() * 40), i);
      timer.add(c);
      all.push(c);
      // Most calls settle soon after they are placed; a few of the older ones too.
      if (random() < 0.99) c.resolve(i);
      else live.push(c);
      if (i % 1000 === 999 && live.length > 3) {
        const j = Math.floor(random() * live.length);
        live.splice(j, 1)[0]!.resolve('late');
      }
    }
    assert.ok(live.length > 50, `${live.length} live calls`);
    await until(() => expired.length >= live.length);
    await sleepPast(base + 50);
    // recording() asserts inside expire that no settled call is expired.
    const seqs = expired.map((e) => e.call.seq);
    assert.deepEqual(new Set(seqs), new Set(live.map((c) => c.seq)));
    assert.equal(seqs.length, live.length, 'each live call expires exactly once');
    for (let i = 1; i < expired.length; i++) {
      assert.ok(expired[i - 1]!.call.deadline <= expired[i]!.call.deadline, `out of order at ${i}`);
    }
    for (const e of expired) assert.ok(e.at >= e.call.deadline);
    timer.close();
    // All are settled now, exactly once each (a second settle reports false).
    for (const c of all) assert.equal(c.resolve('again'), false);
  });

  it('compaction keeps the heap ordered: a live call from another subtree is not expired late', async () => {
    const { timer, expired } = recording();
    const d = Date.now() + 20;
    // Heap array after these adds: [r(1), a(50), s(10), x(60), y(60), b(20)]: a and b are live and
    // in different subtrees, a at the lower index. Filtering out the settled ones alone would
    // leave [a, b], which is not a heap.
    const r = call(d + 1, 0);
    const a = call(d + 50, 1);
    const s = call(d + 10, 2);
    const x = call(d + 60, 3);
    const y = call(d + 60, 4);
    const b = call(d + 20, 5);
    for (const c of [r, a, s, x, y, b]) timer.add(c);
    for (const c of [r, s, x, y]) c.resolve('done');
    // Fill to the compaction threshold with settled calls that stay at the bottom, then one more.
    for (let i = 0; i < 4096 - 6; i++) {
      const filler = call(d + 70, 100 + i);
      timer.add(filler);
      filler.resolve('done');
    }
    timer.add(call(d + 70, 9999)); // compacts first
    await until(() => expired.length >= 3);
    await sleep(10);
    assert.deepEqual(expired.map((e) => e.call.seq), [5, 1, 9999]);
    timer.close();
  });

  it('close() cancels the timer and drops every call', async () => {
    const { timer, expired } = recording();
    const now = Date.now();
    timer.add(call(now + 5, 1));
    timer.add(call(now + 10, 2));
    const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const armed = timeouts();
    timer.close();
    assert.equal(timeouts(), armed - 1, 'the armed setTimeout is cleared, not left to fire');
    await sleepPast(now + 20);
    assert.equal(expired.length, 0);
    // The timer can be used again after close.
    timer.add(call(Date.now() + 5, 3));
    await until(() => expired.length > 0);
    assert.deepEqual(expired.map((e) => e.call.seq), [3]);
    timer.close();
  });
});
