import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RouteGroup } from '../../src/router/capability-registry.js';
import { PendingCall } from '../../src/scheduler/pending-call.js';
import { groupOf, oneReplica } from '../support/one-replica.js';

describe('Scheduler queues and routing-table changes', () => {
  it('keeps one queue per request text, however often the table makes new group objects', () => {
    const setup = oneReplica(1);
    const { scheduler } = setup;
    const settled: string[] = [];
    const call = (group: RouteGroup, signal?: AbortSignal) =>
      new PendingCall(group, new Uint8Array(4), null, 0, scheduler.nextSeq(), 0, 0, signal, () => settled.push('ok'), (e) => settled.push(e.code));
    try {
      // One call takes the replica's only slot (no worker answers it); the rest queue.
      scheduler.submit(call(groupOf('x@1')));
      for (let i = 0; i < 50; i++) {
        const abort = new AbortController();
        scheduler.submit(call(groupOf('x@1'), abort.signal));
        abort.abort();
      }
      assert.equal(settled.length, 50);
      assert.ok(settled.every((code) => code === 'CANCELLED'));
      const queues = (scheduler as unknown as { queues: Map<unknown, unknown> }).queues;
      assert.equal(queues.size, 1, `${queues.size} queues for one request text`);
      assert.equal(scheduler.stats().capabilities['x@1']!.queued, 0);
    } finally {
      setup.close();
    }
  });
});
