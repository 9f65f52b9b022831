/** A scheduler with one replica on a real channel that no worker reads: calls placed stay in its ring. */
import { parseCapabilityRequest } from '../../src/router/capability-ref.js';
import type { CapabilityRoute, RouteGroup } from '../../src/router/capability-registry.js';
import type { CapabilitySchema } from '../../src/router/capability-schema.js';
import { ControllerChannel } from '../../src/scheduler/controller-channel.js';
import { Replica } from '../../src/scheduler/replica.js';
import { computeLayout } from '../../src/scheduler/ring-layout.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';

/** A fresh group object for request `text`, routed to provider 0 (capability x@1.0), as the registry makes after each table change. */
export function groupOf(text: string): RouteGroup {
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

export interface OneReplica {
  readonly scheduler: Scheduler;
  readonly channel: ControllerChannel;
  /** The channel's shared memory, as the worker would see it. */
  readonly words: Int32Array;
  close(): void;
}

/** Provider 0 serves x@1.0 through a 4-slot channel and takes up to `maxInFlight` calls. */
export function oneReplica(maxInFlight: number): OneReplica {
  const scheduler = new Scheduler({ maxQueue: 100, abortGraceMs: 1000, arena: null, recycle: () => {} });
  const layout = computeLayout({ slots: 4, slotBytes: 128, overflowBytes: 4096 });
  const buffer = new SharedArrayBuffer(layout.totalBytes);
  const replica = new Replica(0, 'r0', maxInFlight, 1e6);
  const channel = new ControllerChannel(buffer, layout, scheduler.sinkFor(replica));
  replica.attach(channel, new Map([['x@1.0', 0]]));
  scheduler.addReplica(replica);
  return {
    scheduler,
    channel,
    words: new Int32Array(buffer),
    close() {
      channel.close();
      scheduler.close();
    },
  };
}
