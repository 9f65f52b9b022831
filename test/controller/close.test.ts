import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, rejection, start, type Answer } from './fixtures.js';

test('close lets in-flight and queued calls finish within the grace period', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 1 })] });
  const running = controller.call<Answer>('test.behave@1', { mode: 'sleep', ms: 50, value: 'a' });
  const queued = controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'b' });
  await controller.close({ graceMs: 2000 });
  assert.equal((await running).value, 'a');
  assert.equal((await queued).value, 'b');
});

test('close rejects what has not finished when the grace period ends, with CONTROLLER_CLOSED', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 1 })] });
  const running = rejection(controller.call('test.behave@1', { mode: 'sleep-ignore', ms: 2000 }));
  const queued = rejection(controller.call('test.behave@1', { mode: 'echo', value: 'b' }));
  const started = Date.now();
  await controller.close({ graceMs: 50 });
  assert.ok(Date.now() - started < 1800, 'close did not wait for the handler');
  assert.equal((await running).code, 'CONTROLLER_CLOSED');
  assert.equal((await queued).code, 'CONTROLLER_CLOSED');
});
