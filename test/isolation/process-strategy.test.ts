/**
 * strategy: 'process' through the controller: calls, deadlines, cancel, faults and restarts,
 * start failures, shutdown and clean-up, as the thread strategy's tests demand of threads.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Controller } from '../../src/index.js';
import { crashWorker, rejection, start, waitFor, type Answer } from '../controller/fixtures.js';
import { children, customProfile, processWorker, recordingLogger } from './process-fixtures.js';

const behave = (extra = {}) => processWorker('behave-worker', extra);

test('a process worker serves calls through the controller, async and sync, with bytes', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const answer = await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'hi', data: new Uint8Array([1, 2, 3]) });
    assert.equal(answer.value, 'hi');
    assert.deepEqual([...answer.data], [1, 2, 3]);
    assert.equal((await controller.call<Answer>('test.sync@1', { value: 'sync' })).value, 'sync');
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => controller.call<Answer>('test.behave@1', { mode: 'echo', value: String(i) })));
    assert.deepEqual(many.map((a) => a.value), Array.from({ length: 200 }, (_, i) => String(i)));
    const err = await rejection(controller.call('test.behave@1', { mode: 'throw', value: 'x' }));
    assert.equal(err.code, 'HANDLER_ERROR');
    assert.match(err.message, /asked to throw: x/);
  } finally {
    await controller.close();
  }
});

test('arena views reach a process worker as copies: it cannot write into controller memory', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const view = controller.arena.alloc(64);
    view.fill(1);
    const answer = await controller.call<Answer>('test.behave@1', { mode: 'write-in-place', data: view });
    assert.deepEqual([...answer.data.subarray(0, 4)], [9, 9, 9, 9], 'the worker wrote its copy');
    assert.deepEqual([...view.subarray(0, 4)], [1, 1, 1, 1], 'the arena is untouched');
  } finally {
    await controller.close();
  }
});

test('deadlines, cancellation and a handler that ignores its signal behave as for threads', async () => {
  const controller = await start({ workers: [behave()], abortGraceMs: 100 });
  try {
    let err = await rejection(controller.call('test.behave@1', { mode: 'sleep', ms: 5000 }, { deadlineMs: 50 }));
    assert.equal(err.code, 'DEADLINE_EXCEEDED');
    const ac = new AbortController();
    const pending = controller.call('test.behave@1', { mode: 'sleep', ms: 5000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    assert.equal((await rejection(pending)).code, 'CANCELLED');
    assert.equal(controller.stats().workers[0]!.restarts, 0);
    // A busy loop never looks at its signal: the process is recycled (SIGKILL) and comes back.
    err = await rejection(controller.call('test.behave@1', { mode: 'spin', ms: 5000 }, { deadlineMs: 50 }));
    assert.equal(err.code, 'DEADLINE_EXCEEDED');
    await waitFor(() => controller.stats().workers[0]!.restarts === 1 && controller.stats().workers[0]!.state === 'running');
    assert.equal((await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'fresh' })).value, 'fresh');
  } finally {
    await controller.close();
  }
});

for (const [mode, pattern] of [
  ['exit', /exited with code 3/],
  ['oom', /ran out of memory/],
  ['uncaught', /uncaught exception: an uncaught error from a timer/],
] as const) {
  test(`a process worker that dies (${mode}) fails its calls with WORKER_CRASHED and restarts`, async () => {
    const controller = await start({ workers: [behave({ resourceLimits: { maxOldGenerationSizeMb: 32 } })] });
    try {
      await crashWorker(controller, mode, pattern, 5000);
      await waitFor(() => controller.stats().workers[0]!.state === 'running' && controller.stats().workers[0]!.restarts === 1);
      assert.equal((await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'back' })).value, 'back');
    } finally {
      await controller.close();
    }
  });
}

test('a process worker killed from outside (SIGKILL) is reported with its signal, restarted, and reaped', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const [worker] = children();
    assert.ok(worker, 'the worker is a child of the controller');
    const pending = controller.call('test.behave@1', { mode: 'sleep', ms: 5000 });
    // Let the worker take the call off its ring: calls still on the ring would run after the restart.
    await new Promise((r) => setTimeout(r, 100));
    process.kill(worker.pid, 'SIGKILL');
    const err = await rejection(pending);
    assert.equal(err.code, 'WORKER_CRASHED');
    assert.match(err.message, /killed by SIGKILL/);
    await waitFor(() => controller.stats().workers[0]!.state === 'running');
    assert.equal((await controller.call<Answer>('test.behave@1', { mode: 'echo', value: 'again' })).value, 'again');
    assert.ok(!children().some((c) => c.pid === worker.pid), 'the killed child was reaped, not left a zombie');
  } finally {
    await controller.close();
  }
  assert.deepEqual(children(), [], 'no child process outlives close()');
});

test('a worker whose setup throws fails Controller.start with WORKER_START_FAILED', async () => {
  const err = await rejection(start({ workers: [processWorker('setup-fails-worker')] }));
  assert.equal(err.code, 'WORKER_START_FAILED');
  assert.match(err.message, /the model file is missing/);
  assert.deepEqual(children(), []);
});

test('a start timeout kills the child and fails start', async () => {
  const err = await rejection(start({ workers: [behave({ startTimeoutMs: 1 })] }));
  assert.equal(err.code, 'WORKER_START_FAILED');
  assert.match(err.message, /did not finish setup within 1 ms/);
  await waitFor(() => children().length === 0);
});

test('close runs teardown (writing where the profile allows) and removes the scratch folder', async () => {
  const outside = mkdtempSync(join(tmpdir(), 'caphost-teardown-'));
  const profile = customProfile('test-extra-rw', () => ({ filesystem: { readOnly: [], readWrite: { scratch: true, extra: [outside] } } }));
  const controller = await start({ workers: [processWorker('teardown-worker', { sandbox: profile })] });
  const hostile = await start({ workers: [processWorker('hostile-worker')] });
  try {
    await controller.call('td.mark@1', { path: join(outside, 'marker.txt') });
    const scratch = (await hostile.call<{ detail: string }>('hostile.try@1', { what: 'tmpdir' })).detail;
    assert.ok(existsSync(scratch), `scratch ${scratch} exists while the worker runs`);
    await hostile.close();
    assert.ok(!existsSync(scratch), 'scratch is removed when the worker ends');
    await controller.close();
    assert.equal(readFileSync(join(outside, 'marker.txt'), 'utf8'), 'torn down');
  } finally {
    await controller.close();
    await hostile.close();
    rmSync(outside, { recursive: true, force: true });
  }
});

test('worker output and logs reach the controller logger; the child gets none of its environment', async () => {
  process.env['CAPHOST_TEST_SECRET'] = 'hunter2';
  const logger = recordingLogger();
  const controller = await Controller.start({ logger, workers: [processWorker('hostile-worker')] });
  try {
    const env = (await controller.call<{ detail: string }>('hostile.try@1', { what: 'env' })).detail.split(',');
    assert.ok(!env.includes('CAPHOST_TEST_SECRET'));
    assert.ok(!env.includes('NODE_OPTIONS'));
    assert.ok(env.includes('HOME') && env.includes('TMPDIR'), env.join(','));
    await controller.call('hostile.try@1', { what: 'print', arg: 'hello' });
    await waitFor(() => logger.lines.some((l) => /^info \[hostile-worker\.js#0\.0\] ctx\.log: hello$/.test(l)));
    await waitFor(() => logger.lines.some((l) => /^info \[hostile-worker\.js#0\.0\] stdout: hello$/.test(l)));
  } finally {
    await controller.close();
    delete process.env['CAPHOST_TEST_SECRET'];
  }
});

test('options: sandbox is validated eagerly and refused on thread workers', async () => {
  let err = await rejection(start({ workers: [processWorker('behave-worker', { sandbox: 'lenient' as 'strict' })] }));
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /options\.workers\[0\]\.sandbox must be one of 'strict'/);
  err = await rejection(start({ workers: [{ module: processWorker('behave-worker').module, sandbox: 'strict' }] }));
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /applies to strategy "process" only/);
  err = await rejection(start({ workers: [processWorker('behave-worker', { sandbox: customProfile('strict', () => ({})) })] }));
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /options\.workers\[0\]\.sandbox\.name "strict" is reserved/);
});
