import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaphostError } from '../../src/index.js';
import { behave, start, waitFor } from './fixtures.js';
import { mulberry32 as prng } from '../support/prng.js';


test('under random deadlines, cancels and crashes every call settles exactly once', async () => {
  const seed = Number(process.env['CAPHOST_STRESS_SEED'] ?? Date.now() % 100000);
  const random = prng(seed);
  const controller = await start({
    workers: [behave({ replicas: 2, maxInFlight: 16 })],
    maxQueue: 100_000,
    abortGraceMs: 50,
    restart: { initialDelayMs: 1, maxDelayMs: 20, maxCrashes: 1000, windowMs: 1000 },
  });
  const total = 3000;
  let resolved = 0;
  let rejected = 0;
  let doubles = 0;
  const codes = new Map<string, number>();
  const calls: Promise<void>[] = [];
  try {
    for (let i = 0; i < total; i++) {
      const r = random();
      const mode = r < 0.005 ? 'exit' : r < 0.02 ? 'throw' : r < 0.15 ? 'sleep' : r < 0.17 ? 'sleep-ignore' : 'echo';
      const options: { deadlineMs?: number; signal?: AbortSignal; priority: number } = { priority: Math.floor(random() * 3) };
      if (random() < 0.3) options.deadlineMs = 1 + Math.floor(random() * 30);
      if (random() < 0.1) {
        const ac = new AbortController();
        options.signal = ac.signal;
        setTimeout(() => ac.abort(), Math.floor(random() * 20));
      }
      let settled = 0;
      calls.push(
        controller.call('test.behave@1', { mode, ms: 1 + Math.floor(random() * 10), value: String(i) }, options).then(
          () => {
            if (settled++ > 0) doubles++;
            resolved++;
          },
          (err: unknown) => {
            if (settled++ > 0) doubles++;
            rejected++;
            assert.ok(err instanceof CaphostError, `call ${i} rejected with a non-caphost error: ${err}`);
            codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
          },
        ),
      );
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(calls);
    assert.equal(doubles, 0, `seed ${seed}: a call settled twice`);
    assert.equal(resolved + rejected, total, `seed ${seed}: every call settled`);
    const stats = controller.stats().capabilities['test.behave@1']!;
    const errors = Object.values(stats.errors).reduce((a, b) => a + b, 0);
    assert.equal(stats.submitted, total);
    assert.equal(stats.ok, resolved, `seed ${seed}: stats agree on successes`);
    assert.equal(errors, rejected, `seed ${seed}: stats agree on failures`);
    for (const code of codes.keys()) assert.ok(['DEADLINE_EXCEEDED', 'CANCELLED', 'WORKER_CRASHED', 'HANDLER_ERROR'].includes(code), `unexpected code ${code}`);
    // Nothing is left behind: no call queued or in flight, and the workers serve again.
    await waitFor(() => controller.stats().queued === 0 && controller.stats().workers.every((w) => w.inFlight === 0 && w.state === 'running'));
  } finally {
    await controller.close();
  }
});
