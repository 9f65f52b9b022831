import assert from 'node:assert/strict';
import { Controller, type ControllerOptions, type WorkerEntry } from '../../src/index.js';

export const fixture = (name: string): URL => new URL(`../fixtures/workers/${name}.js`, import.meta.url);

export const behave = (extra: Partial<WorkerEntry> = {}): WorkerEntry => ({ module: fixture('behave-worker'), strategy: 'thread', ...extra });

/** Starts a controller with quiet logs and fast restarts unless the test says otherwise. */
export function start(options: Partial<ControllerOptions> & Pick<ControllerOptions, 'workers'>): Promise<Controller> {
  return Controller.start({ logger: 'silent', restart: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
}

export interface Answer {
  value: string;
  aborted: boolean;
  data: Uint8Array;
  replica: number;
}

export async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string; details?: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    return err as { code: string; message: string; details?: Record<string, unknown> };
  }
  throw new Error('expected the call to reject');
}

export async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Makes a behave-worker die the way `mode` says ('uncaught' kills it from a timer, so a sleeping
 * call is what sees the crash) and checks that the call fails with WORKER_CRASHED matching `pattern`.
 */
export async function crashWorker(controller: Controller, mode: string, pattern: RegExp, sleepMs: number): Promise<void> {
  let victim: Promise<unknown>;
  if (mode === 'uncaught') {
    victim = controller.call('test.behave@1', { mode: 'sleep', ms: sleepMs });
    await controller.call('test.behave@1', { mode: 'uncaught' });
  } else {
    victim = controller.call('test.behave@1', { mode });
  }
  const err = await rejection(victim);
  assert.equal(err.code, 'WORKER_CRASHED');
  assert.match(err.message, pattern);
}
