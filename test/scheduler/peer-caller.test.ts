import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControllerChannel } from '../../src/scheduler/controller-channel.js';
import { PendingCall } from '../../src/scheduler/pending-call.js';
import { computeLayout, Word } from '../../src/scheduler/ring-layout.js';
import { ONE_CPU } from '../../src/scheduler/spin-budget.js';
import type { Wake } from '../../src/scheduler/wake.js';
import { createConsoleLogger } from '../../src/logger.js';
import { loadWorkerModule } from '../../src/worker/load-worker-module.js';
import { WorkerLoop } from '../../src/worker/worker-loop.js';
import { groupOf, oneReplica } from '../support/one-replica.js';

const layout = computeLayout({ slots: 4, slotBytes: 128, overflowBytes: 4096 });

describe('a mesh peer as the caller (Word.PEER_CALLER)', () => {
  it('is marked in the channel for each request the scheduler places, and cleared for a local one', () => {
    const setup = oneReplica(4);
    const { scheduler, words } = setup;
    const group = groupOf('x@1');
    const call = (fromPeer: boolean) => {
      const c = new PendingCall(group, new Uint8Array(4), null, 0, scheduler.nextSeq(), 0, 0, undefined, () => {}, () => {});
      c.fromPeer = fromPeer;
      return c;
    };
    try {
      assert.equal(Atomics.load(words, Word.PEER_CALLER), 0);
      scheduler.submit(call(true));
      assert.equal(Atomics.load(words, Word.PEER_CALLER), 1);
      scheduler.submit(call(true));
      assert.equal(Atomics.load(words, Word.PEER_CALLER), 1);
      scheduler.submit(call(false));
      assert.equal(Atomics.load(words, Word.PEER_CALLER), 0);
    } finally {
      setup.close();
    }
  });

  it('the worker does not spin for a peer the way it spins for a local caller waiting on each answer', { skip: ONE_CPU ? 'one CPU: the worker never spins' : false }, async () => {
    const { capabilities } = await loadWorkerModule(new URL('../fixtures/workers/echo-worker.js', import.meta.url));
    const cap = capabilities[0]!;
    /** Milliseconds from the worker's start to its park, after it answered one request. */
    const untilPark = (fromPeer: boolean): number => {
      const buffer = new SharedArrayBuffer(layout.totalBytes);
      const words = new Int32Array(buffer);
      let parkedAt = 0;
      // The worker runs on this thread: its park ends it, so that the test goes on.
      const wake: Wake = {
        wait() {
          parkedAt = performance.now();
          Atomics.store(words, Word.SHUTDOWN, 1);
        },
        waitAsync: () => null,
        notify() {},
      };
      const channel = new ControllerChannel(buffer, layout, () => {}, wake);
      const { bytes } = cap.schema.input.encode({ data: new Uint8Array([1, 2, 3]) }, null);
      assert.equal(channel.place(1, 0, 0, bytes, null, fromPeer), true);
      let stopped = false;
      const loop = new WorkerLoop(buffer, layout, null, capabilities, createConsoleLogger('silent'), () => (stopped = true), wake);
      const start = performance.now();
      loop.start();
      assert.ok(stopped, 'the worker did not leave its loop');
      channel.close();
      return parkedAt - start;
    };
    // A local caller's first gap is spun for up to 2 ms before the worker parks; a peer's for up to 64 µs.
    const local = untilPark(false);
    const peer = untilPark(true);
    assert.ok(local >= 1.5, `the worker parked ${local.toFixed(3)} ms after answering a local caller: it should spin first`);
    assert.ok(peer < 1, `the worker parked ${peer.toFixed(3)} ms after answering a mesh peer: it spun for the peer's next call`);
  });
});
