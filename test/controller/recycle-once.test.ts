/**
 * Several calls that ignore their aborted signal on one worker each ask for it to be recycled.
 * The worker must be recycled once: a second recycle used to start a second instance whose
 * channel replaced the first's, dropping the calls the first still held (they never settled).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, start, waitFor } from './fixtures.js';

test('many recycle requests for one worker restart it once, and no call is lost', { timeout: 60_000 }, async () => {
  const controller = await start({
    workers: [behave({ replicas: 1, maxInFlight: 16 })],
    abortGraceMs: 20,
    restart: { initialDelayMs: 1, maxDelayMs: 5, maxCrashes: 100, windowMs: 10_000 },
  });
  try {
    // Eight calls spin far past their deadline, deaf to the abort: eight grace timers fire
    // (long before the sleeps end, however loaded the machine).
    const stubborn = Array.from({ length: 8 }, (_, i) => controller.call('test.behave@1', { mode: 'spin', ms: 5000, value: `s${i}` }, { deadlineMs: 150 }).catch((e: { code: string }) => e.code));
    // Calls placed meanwhile, with no deadline: each must settle, whatever happens to the worker.
    await new Promise((r) => setTimeout(r, 30));
    const plain = Array.from({ length: 40 }, (_, i) => controller.call('test.behave@1', { mode: 'echo', value: `p${i}` }).then(() => 'ok', (e: { code: string }) => e.code));
    const codes = await Promise.all(stubborn);
    assert.ok(codes.every((c) => c === 'DEADLINE_EXCEEDED'), `stubborn calls: ${codes.join(',')}`);
    const outcomes = await Promise.race([
      Promise.all(plain),
      new Promise<string[]>((_, reject) => setTimeout(() => reject(new Error('a call placed during the recycle never settled')), 10_000)),
    ]);
    assert.ok(outcomes.every((o) => o === 'ok' || o === 'WORKER_CRASHED'), outcomes.join(','));
    await waitFor(() => controller.stats().workers[0]!.restarts >= 1 && controller.stats().workers[0]!.state === 'running', 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(controller.stats().workers)}`);
    });
    // Every grace timer has fired by now (20 ms after its call's deadline): no second restart follows.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(controller.stats().workers[0]!.restarts, 1, 'recycled once');
    await controller.call('test.behave@1', { mode: 'echo', value: 'after' });
  } finally {
    await controller.close();
  }
});
