import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, crashWorker, rejection, start, waitFor, type Answer } from './fixtures.js';

for (const [mode, pattern] of [
  ['exit', /exited with code 3/],
  ['oom', /ran out of memory/],
  ['uncaught', /uncaught exception: an uncaught error from a timer/],
] as const) {
  test(`a worker that dies (${mode}) fails its calls with WORKER_CRASHED, restarts, and others are untouched`, async () => {
    const controller = await start({
      workers: [behave({ resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 } }), { module: new URL('../fixtures/workers/versions-b.js', import.meta.url) }],
    });
    try {
      const other = controller.call<{ served: string }>('ver.op@2', { name: 'x' });
      await crashWorker(controller, mode, pattern, 2000);
      assert.equal((await other).served, 'ver.op@2.0');
      await waitFor(() => controller.stats().workers[0]!.state === 'running' && controller.stats().workers[0]!.restarts === 1);
      assert.equal((await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'back' })).value, 'back');
    } finally {
      await controller.close();
    }
  });
}

test('calls a dead worker had not taken off its ring run after the restart; the one it was running fails', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 8 })], abortGraceMs: 50 });
  try {
    const stuck = controller.call('test.behave@1', { mode: 'spin', ms: 3000 }, { deadlineMs: 30 });
    const waiting = controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'survivor' });
    assert.equal((await rejection(stuck)).code, 'DEADLINE_EXCEEDED');
    assert.equal((await waiting).value, 'survivor');
    assert.equal(controller.stats().workers[0]!.restarts, 1);
  } finally {
    await controller.close();
  }
});

test('a worker that keeps crashing is given up and its capability becomes CAPABILITY_UNAVAILABLE', async () => {
  const controller = await start({ workers: [behave()], restart: { initialDelayMs: 1, maxDelayMs: 5, maxCrashes: 2, windowMs: 60_000 } });
  try {
    for (let i = 0; i < 3; i++) {
      await waitFor(() => controller.stats().workers[0]!.state !== 'restarting');
      if (controller.stats().workers[0]!.state === 'failed') break;
      assert.equal((await rejection(controller.call('test.behave@1', { mode: 'exit' }))).code, 'WORKER_CRASHED');
    }
    await waitFor(() => controller.stats().workers[0]!.state === 'failed');
    assert.equal((await rejection(controller.call('test.behave@1', { mode: 'echo' }))).code, 'CAPABILITY_UNAVAILABLE');
  } finally {
    await controller.close();
  }
});
