import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Controller, WorkerEntry } from '../../src/index.js';
import { fixture, rejection, start } from './fixtures.js';

interface Seen {
  value: string;
  size: number;
  index: number;
  batch: number;
  cancelled: boolean[];
  aborted: boolean;
  values: string[];
  replica: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(5);
  }
}

for (const strategy of ['thread', 'process'] as const) {
  const worker = (extra: Partial<WorkerEntry> = {}): WorkerEntry => ({ module: fixture('batch-worker'), strategy, ...extra });

  async function withController(run: (controller: Controller) => Promise<void>, extra: Partial<WorkerEntry> = {}): Promise<void> {
    const controller = await start({ workers: [worker(extra)] });
    try {
      await run(controller);
    } finally {
      await controller.close();
    }
  }

  describe(`dynamic batching (${strategy} worker)`, () => {
    it('calls submitted together reach the handler as one batch, results go back per call', () =>
      withController(async (controller) => {
        const values = ['a', 'b', 'c'];
        const seen = await Promise.all(values.map((value) => controller.call<Seen>('test.batch@1', { mode: 'echo', value })));
        assert.deepEqual(seen.map((s) => s.value), values);
        assert.deepEqual(seen.map((s) => s.size), [3, 3, 3]);
        assert.deepEqual(seen.map((s) => s.index), [0, 1, 2]);
        assert.equal(new Set(seen.map((s) => s.batch)).size, 1);
        assert.deepEqual(seen[0]!.values, values);
      }));

    it('a batch holds at most maxSize calls; the next forms while the replica runs one', () =>
      withController(async (controller) => {
        const seen = await Promise.all(Array.from({ length: 10 }, (_, i) => controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 20, value: String(i) })));
        assert.deepEqual(seen.map((s) => s.value), Array.from({ length: 10 }, (_, i) => String(i)));
        const sizes = [...new Map(seen.map((s) => [s.batch, s.size])).values()];
        assert.deepEqual(sizes, [4, 4, 2]);
      }));

    it('waits up to maxQueueDelayUs for more calls, then sends what it has', () =>
      withController(async (controller) => {
        const started = performance.now();
        const first = controller.call<Seen>('test.batchwait@1', { mode: 'echo', value: 'first' });
        await sleep(15);
        const later = [controller.call<Seen>('test.batchwait@1', { mode: 'echo', value: 'second' }), controller.call<Seen>('test.batchwait@1', { mode: 'echo', value: 'third' })];
        const seen = await Promise.all([first, ...later]);
        const elapsed = performance.now() - started;
        assert.deepEqual(seen.map((s) => s.size), [3, 3, 3]);
        assert.equal(new Set(seen.map((s) => s.batch)).size, 1);
        // The batch went when the first call had waited its 60 ms, not before (and not much after, even on a busy machine).
        assert.ok(elapsed >= 55, `sent after ${elapsed.toFixed(1)} ms`);
        assert.ok(elapsed < 1000, `sent after ${elapsed.toFixed(1)} ms`);
      }));

    it('sends a preferred size at once; the remainder waits out the delay', () =>
      withController(async (controller) => {
        const started = performance.now();
        const times: number[] = [];
        const seen = await Promise.all(
          ['a', 'b', 'c', 'd', 'e'].map((value, i) =>
            controller.call<Seen>('test.batchpref@1', { mode: 'echo', value }).then((s) => {
              times[i] = performance.now() - started;
              return s;
            }),
          ),
        );
        assert.deepEqual(seen.map((s) => s.size), [4, 4, 4, 4, 1]);
        assert.ok(times[0]! < 700, `the preferred batch took ${times[0]!.toFixed(1)} ms`);
        assert.ok(times[4]! >= 990, `the remainder went after ${times[4]!.toFixed(1)} ms, before its 1 s delay`);
      }));

    it('queued calls join batches by priority', () =>
      withController(async (controller) => {
        // A full batch occupies the replica; the rest queue behind it.
        const blockers = ['x', 'x', 'x', 'x'].map((value) => controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 100, value }));
        await sleep(20);
        const order = [
          ['low', -1],
          ['mid', 0],
          ['high', 5],
          ['top', 9],
          ['mid2', 0],
        ] as const;
        const calls = order.map(([value, priority]) => controller.call<Seen>('test.batch@1', { mode: 'echo', value }, { priority }));
        await Promise.all(blockers);
        const seen = await Promise.all(calls);
        const byValue = new Map(seen.map((s) => [s.value, s]));
        assert.deepEqual(byValue.get('top')!.values, ['top', 'high', 'mid', 'mid2']);
        assert.deepEqual(byValue.get('low')!.values, ['low']);
      }));

    it('a call whose deadline passes in the queue fails alone with DEADLINE_EXCEEDED', () =>
      withController(async (controller) => {
        const blockers = ['x', 'x', 'x', 'x'].map((value) => controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 400, value }));
        // Once their batch runs (a fixed sleep is too short on a loaded machine), the next calls queue behind it.
        await waitFor(async () => (await controller.call<Seen>('test.single@1', { mode: 'echo' })).batch === 1);
        const late = controller.call<Seen>('test.batch@1', { mode: 'echo', value: 'late' }, { deadlineMs: 30 });
        const fine = controller.call<Seen>('test.batch@1', { mode: 'echo', value: 'fine' });
        const err = await rejection(late);
        assert.equal(err.code, 'DEADLINE_EXCEEDED');
        assert.equal(err.details?.['state'], 'queued');
        await Promise.all(blockers);
        assert.deepEqual((await fine).values, ['fine']);
      }));

    it('cancelling one call of a running batch settles it at once; the others finish', () =>
      withController(async (controller) => {
        const abort = new AbortController();
        const calls = ['a', 'b', 'c'].map((value, i) =>
          controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 3000, value }, i === 1 ? { signal: abort.signal } : undefined),
        );
        // Cancel once the batch is running in the worker (its handler awaits, so the worker answers test.single meanwhile).
        await waitFor(async () => (await controller.call<Seen>('test.single@1', { mode: 'echo' })).batch === 1);
        const cancelledAt = performance.now();
        abort.abort();
        const err = await rejection(calls[1]!);
        assert.equal(err.code, 'CANCELLED');
        assert.ok(performance.now() - cancelledAt < 1500, 'the cancelled call settled before its batch finished');
        const [a, c] = await Promise.all([calls[0]!, calls[2]!]);
        assert.deepEqual([a.value, c.value], ['a', 'c']);
        assert.deepEqual(a.cancelled, [false, true, false]);
        assert.equal(a.aborted, false);
        // The worker was not recycled for the cancelled call: it finished the batch.
        assert.equal(controller.stats().workers[0]!.restarts, 0);
      }));

    it("the handler's signal aborts once every call of its batch is cancelled", () =>
      withController(async (controller) => {
        const abort = new AbortController();
        const calls = ['a', 'b'].map((value) => controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 5000, value }, { signal: abort.signal }));
        const running = async () => (await controller.call<Seen>('test.single@1', { mode: 'echo' })).batch;
        await waitFor(async () => (await running()) === 1);
        abort.abort();
        for (const call of calls) assert.equal((await rejection(call)).code, 'CANCELLED');
        // The handler's sleep was aborted through ctx.signal, long before its 5 s.
        const started = performance.now();
        await waitFor(async () => (await running()) === 0, 2000);
        const next = await controller.call<Seen>('test.batch@1', { mode: 'echo', value: 'next' });
        assert.equal(next.value, 'next');
        assert.ok(performance.now() - started < 1000);
      }));

    it('an Error in place of one output fails that call alone; a wrong-length answer fails the batch', () =>
      withController(async (controller) => {
        const [ok, bad] = await Promise.allSettled(['ok', 'bad'].map((value) => controller.call<Seen>('test.batch@1', { mode: value === 'bad' ? 'fail' : 'echo', value })));
        assert.equal(ok.status, 'fulfilled');
        assert.equal(bad.status, 'rejected');
        assert.equal((bad as PromiseRejectedResult).reason.code, 'HANDLER_ERROR');
        assert.match((bad as PromiseRejectedResult).reason.message, /asked to fail: bad/);
        const short = await Promise.allSettled(['x', 'y'].map((value) => controller.call('test.batch@1', { mode: 'short', value })));
        for (const r of short) {
          assert.equal(r.status, 'rejected');
          assert.equal((r as PromiseRejectedResult).reason.code, 'HANDLER_ERROR');
          assert.match((r as PromiseRejectedResult).reason.message, /returned 1 outputs for 2 inputs/);
        }
      }));

    it('a synchronous batch handler serves many concurrent calls, each once', () =>
      withController(async (controller) => {
        const n = 500;
        const seen = await Promise.all(Array.from({ length: n }, (_, i) => controller.call<Seen>('test.batchsync@1', { mode: 'echo', value: `v${i}` })));
        assert.deepEqual(seen.map((s) => s.value), Array.from({ length: n }, (_, i) => `V${i}`));
        assert.ok(seen.every((s) => s.size >= 1 && s.size <= 16));
        assert.ok(seen.some((s) => s.size > 1), 'calls that wait together form batches');
        const stats = controller.stats().capabilities['test.batchsync@1']!;
        assert.equal(stats.ok, n);
        assert.equal(stats.queued, 0);
      }));

    it('batched and single capabilities of one worker serve side by side', () =>
      withController(async (controller) => {
        const [batch, single] = await Promise.all([controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 50, value: 'b' }), controller.call<Seen>('test.single@1', { mode: 'echo', value: 's' })]);
        assert.equal(batch.value, 'b');
        assert.equal(single.value, 's');
      }));
  });
}

describe('dynamic batching across replicas', () => {
  it('each replica takes one batch at a time', async () => {
    const controller = await start({ workers: [{ module: fixture('batch-worker'), strategy: 'thread', replicas: 2 }] });
    try {
      const seen = await Promise.all(Array.from({ length: 8 }, (_, i) => controller.call<Seen>('test.batch@1', { mode: 'sleep', ms: 400, value: String(i) })));
      assert.deepEqual([...new Map(seen.map((s) => [`${s.replica}:${s.values.join()}`, s.size])).values()], [4, 4]);
      // The second batch went to the idle replica rather than waiting for the busy one.
      assert.deepEqual([...new Set(seen.map((s) => s.replica))].sort(), [0, 1]);
    } finally {
      await controller.close();
    }
  });
});

describe('defineWorker batch option', () => {
  it('rejects a malformed policy when the module loads', async () => {
    const { defineWorker } = await import('../../src/worker/index.js');
    const schema = { proto: 'syntax = "proto3"; message M { string s = 1; }', input: 'M', output: 'M' };
    assert.throws(() => defineWorker({ capabilities: { 'x.y@1.0': { schema, batch: { maxSize: 0, maxQueueDelayUs: 0 }, handler: (m: unknown[]) => m } } }), /capabilities\["x\.y@1\.0"\]\.batch\.maxSize/);
  });
});
