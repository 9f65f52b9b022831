import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCapabilityRequest } from '../../src/router/capability-ref.js';
import type { CapabilityRoute, RouteGroup } from '../../src/router/capability-registry.js';
import type { CapabilitySchema } from '../../src/router/capability-schema.js';
import { ControllerChannel } from '../../src/scheduler/controller-channel.js';
import { PendingCall } from '../../src/scheduler/pending-call.js';
import { Replica } from '../../src/scheduler/replica.js';
import { computeLayout } from '../../src/scheduler/ring-layout.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';

/** A fresh group object for the same request text, as the registry makes after each table change. */
function groupOf(text: string): RouteGroup {
  const route = {
    provider: 0,
    capability: { name: 'x', major: 1, minor: 0 },
    remote: false,
    key: 'x@1.0',
    schema: {} as CapabilitySchema,
    index: 0,
    sharesArena: false,
    batch: undefined,
  } as CapabilityRoute;
  return { text, request: parseCapabilityRequest(text), candidates: [route], sharesArena: false, batched: false };
}

describe('Scheduler queues and routing-table changes', () => {
  it('keeps one queue per request text, however often the table makes new group objects', () => {
    const scheduler = new Scheduler({ maxQueue: 100, abortGraceMs: 1000, arena: null, recycle: () => {} });
    const layout = computeLayout({ slots: 4, slotBytes: 128, overflowBytes: 4096 });
    const replica = new Replica(0, 'r0', 1, 1e6);
    const channel = new ControllerChannel(new SharedArrayBuffer(layout.totalBytes), layout, scheduler.sinkFor(replica));
    replica.attach(channel, new Map([['x@1.0', 0]]));
    scheduler.addReplica(replica);
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
      channel.close();
      scheduler.close();
    }
  });
});
