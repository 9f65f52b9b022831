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
