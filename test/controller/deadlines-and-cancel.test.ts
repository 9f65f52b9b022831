import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, rejection, start, waitFor, type Answer } from './fixtures.js';

test('a deadline that passes while running aborts ctx.signal and fails DEADLINE_EXCEEDED', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const started = Date.now();
    const err = await rejection(controller.call('test.behave@1', { mode: 'sleep', ms: 5000 }, { deadlineMs: 50 }));
    assert.equal(err.code, 'DEADLINE_EXCEEDED');
    assert.equal(err.details?.['state'], 'running');
    assert.ok(Date.now() - started < 1000);
    // The handler saw its signal abort and returned; the worker was not recycled.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(controller.stats().workers[0]!.restarts, 0);
    assert.equal((await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'ok' })).value, 'ok');
  } finally {
    await controller.close();
  }
});

test('a deadline that passes while queued fails DEADLINE_EXCEEDED without running', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 1 })] });
  try {
    const blocker = controller.call('test.behave@1', { mode: 'sleep', ms: 300, value: 'first' });
    const err = await rejection(controller.call('test.behave@1', { mode: 'echo', value: 'late' }, { deadlineMs: 30 }));
    assert.equal(err.code, 'DEADLINE_EXCEEDED');
    assert.equal(err.details?.['state'], 'queued');
    assert.equal(((await blocker) as unknown as Answer).value, "first");
  } finally {
    await controller.close();
  }
});

test('a handler that ignores its aborted signal past the grace period gets its worker recycled', async () => {
  const controller = await start({ workers: [behave()], abortGraceMs: 100 });
  try {
    const err = await rejection(controller.call('test.behave@1', { mode: 'spin', ms: 3000 }, { deadlineMs: 50 }));
    assert.equal(err.code, 'DEADLINE_EXCEEDED');
    await waitFor(() => controller.stats().workers[0]!.restarts === 1 && controller.stats().workers[0]!.state === 'running');
    assert.equal((await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'fresh' })).value, 'fresh');
  } finally {
    await controller.close();
  }
});

test('an already aborted signal fails at once with CANCELLED', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const err = await rejection(controller.call('test.behave@1', { mode: 'echo' }, { signal: AbortSignal.abort() }));
    assert.equal(err.code, 'CANCELLED');
  } finally {
    await controller.close();
  }
});

test('aborting a running call fails it with CANCELLED and aborts the handler', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const ac = new AbortController();
    const pending = controller.call('test.behave@1', { mode: 'sleep', ms: 5000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user went away')), 30);
    const err = await rejection(pending);
    assert.equal(err.code, 'CANCELLED');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(controller.stats().workers[0]!.inFlight, 0, 'the handler returned after its signal aborted');
  } finally {
    await controller.close();
  }
});

test('aborting a queued call removes it from the queue', async () => {
  const controller = await start({ workers: [behave({ maxInFlight: 1 })] });
  try {
    const blocker = controller.call('test.behave@1', { mode: 'sleep', ms: 200, value: 'b' });
    const ac = new AbortController();
    const queued = controller.call('test.behave@1', { mode: 'echo', value: 'never' }, { signal: ac.signal });
    assert.equal(controller.stats().queued, 1);
    ac.abort();
    assert.equal((await rejection(queued)).code, 'CANCELLED');
    assert.equal(controller.stats().queued, 0);
    await blocker;
  } finally {
    await controller.close();
  }
});
