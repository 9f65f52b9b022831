/**
 * What each party of the mesh bench saw, for a run in which a call failed: enough to tell a
 * message NATS dropped (the serving node never counted the request, or answered everything) from
 * a call the serving node held (queued or in flight there) and from a stalled process or VM.
 */
import type { ChildProcess } from 'node:child_process';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { Controller, ControllerStats } from '../../src/controller/controller.js';
import type { NatsServer } from '../../test/mesh/nats-server.js';

export interface LossParties {
  readonly caller: Controller | undefined;
  readonly child: ChildProcess | undefined;
  readonly server: NatsServer | undefined;
  /** The bench process's event-loop delay over the run. */
  readonly lag: IntervalHistogram;
}

export async function lossReport({ caller, child, server, lag }: LossParties): Promise<string[]> {
  const notes = [`bench process: longest event-loop delay ${(lag.max / 1e6).toFixed(0)} ms (seconds would mean this process or the VM stalled)`];
  const sent = caller?.stats().mesh;
  if (sent !== undefined) {
    notes.push(`caller: sent ${JSON.stringify(sent.sent)}, retried ${sent.retried}, reconnects ${sent.reconnects}, in flight ${JSON.stringify(Object.fromEntries(sent.peers.map((p) => [p.node, p.inFlight])))}`);
  }
  const seen = child === undefined ? undefined : await askStats(child, 3000);
  if (seen === undefined) notes.push('serving node: did not answer a stats request within 3 s');
  else {
    const workers = seen.workers.map((w) => ({ state: w.state, inFlight: w.inFlight, missedWakeups: w.missedWakeups, workerNudges: w.workerNudges, stalledParks: w.stalledParks, restarts: w.restarts }));
    notes.push(`serving node: served ${JSON.stringify(seen.mesh?.served)}, reconnects ${seen.mesh?.reconnects}, queued ${seen.queued}, workers ${JSON.stringify(workers)}, calls ${JSON.stringify(seen.capabilities)}`);
  }
  const said = server?.log.filter((line) => /slow consumer|\[WRN\]|\[ERR\]/i.test(line)).slice(-10) ?? [];
  notes.push(said.length === 0 ? 'nats-server: no warning or error in its log' : `nats-server: ${said.join(' | ')}`);
  return notes;
}

export function askStats(child: ChildProcess, timeoutMs: number): Promise<ControllerStats | undefined> {
  if (child.exitCode !== null || !child.connected) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), timeoutMs);
    const onMessage = (message: unknown) => {
      if (message !== null && typeof message === 'object' && 'stats' in message) done((message as { stats: ControllerStats }).stats);
    };
    const done = (stats: ControllerStats | undefined) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(stats);
    };
    child.on('message', onMessage);
    child.send('stats');
  });
}
