import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, rejection, start, type Answer } from './fixtures.js';

test('a full queue rejects with QUEUE_FULL and says what to do', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 1 })], maxQueue: 2 });
  try {
    const calls = [0, 1, 2].map((i) => controller.call('test.behave@1', { mode: 'sleep', ms: 100, value: String(i) }));
    const err = await rejection(controller.call('test.behave@1', { mode: 'echo' }));
    assert.equal(err.code, 'QUEUE_FULL');
    assert.match(err.message, /maxQueue/);
    assert.deepEqual((await Promise.all(calls)).map((a) => (a as unknown as Answer).value), ['0', '1', '2']);
  } finally {
    await controller.close();
  }
});

test('queued calls run by priority, then in order of arrival', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 1 })] });
  try {
    const order: string[] = [];
    const blocker = controller.call('test.behave@1', { mode: 'sleep', ms: 100, value: 'blocker' });
    const calls = [
      ['low-1', -1],
      ['normal-1', 0],
      ['high-1', 5],
      ['normal-2', 0],
      ['high-2', 5],
      ['low-2', -1],
    ].map(([value, priority]) =>
      controller.call<Answer>('test.behave@1', { mode: 'echo', value: value as string }, { priority: priority as number }).then((a) => order.push(a.value)),
    );
    await blocker;
    await Promise.all(calls);
    assert.deepEqual(order, ['high-1', 'high-2', 'normal-1', 'normal-2', 'low-1', 'low-2']);
  } finally {
    await controller.close();
  }
});

test('calls go to the least-loaded replica', async () => {
  const controller = await start({ workers: [behave({ replicas: 3 })] });
  try {
    const answers = await Promise.all([0, 1, 2].map(() => controller.call<Answer>('test.behave@1', { mode: 'sleep', ms: 100, value: 'x' })));
    assert.deepEqual(answers.map((a) => a.replica).sort(), [0, 1, 2]);
  } finally {
    await controller.close();
  }
});
