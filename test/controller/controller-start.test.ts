import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CaphostError, Controller } from '../../src/index.js';
import { behave, fixture, rejection, start } from './fixtures.js';

test('start reports capabilities, serves calls and closes idempotently', async () => {
  const controller = await start({ workers: [behave({ replicas: 2 })] });
  const caps = controller.capabilities();
  assert.deepEqual(caps.map((c) => c.capability), ['test.behave@1.0', 'test.sync@1.0']);
  assert.equal(caps[0]!.providers, 2);
  assert.equal(caps[0]!.input, 'Ask');
  const answer = await controller.call<{ value: string }>('test.behave@1', { mode: 'echo', value: 'hi' });
  assert.equal(answer.value, 'hi');
  const stats = controller.stats();
  assert.equal(stats.workers.length, 2);
  assert.ok(stats.workers.every((w) => w.state === 'running'));
  assert.equal(stats.capabilities['test.behave@1']!.ok, 1);
  const first = controller.close();
  assert.equal(controller.close(), first);
  await first;
  const closed = await rejection(controller.call('test.behave@1', { mode: 'echo' }));
  assert.equal(closed.code, 'CONTROLLER_CLOSED');
});

test('a module path may be a string relative to the working directory', async () => {
  const relativePath = relative(process.cwd(), fileURLToPath(fixture('behave-worker')));
  assert.ok(!relativePath.startsWith('/'));
  const controller = await start({ workers: [{ module: relativePath }] });
  try {
    assert.equal((await controller.call<{ value: string }>('test.sync@1', { value: 'rel' })).value, 'rel');
  } finally {
    await controller.close();
  }
});

test('options are validated eagerly with the option named', async () => {
  const cases: Array<[unknown, string, string]> = [
    [{ workers: [] }, 'INVALID_ARGUMENT', 'options.workers'],
    [{ workers: [behave({ replicas: 0 })] }, 'INVALID_ARGUMENT', 'options.workers[0].replicas'],
    [{ workers: [behave()], maxQueue: -1 }, 'INVALID_ARGUMENT', 'options.maxQueue'],
    [{ workers: [behave()], transport: { slots: 100 } }, 'INVALID_ARGUMENT', 'options.transport.slots must be a power of two'],
    [{ workers: [{ module: 42 }] }, 'INVALID_ARGUMENT', 'options.workers[0].module'],
    [{ workers: [behave({ strategy: 'fork' as never })] }, 'INVALID_ARGUMENT', 'options.workers[0].strategy'],
  ];
  for (const [options, code, text] of cases) {
    const err = await rejection(Controller.start(options as never));
    assert.equal(err.code, code);
    assert.ok(err.message.includes(text), `${err.message} should mention ${text}`);
  }
});

test('a worker whose setup throws fails start with WORKER_START_FAILED and the reason', async () => {
  const err = await rejection(start({ workers: [{ module: fixture('setup-fails-worker') }] }));
  assert.ok(err instanceof CaphostError);
  assert.equal(err.code, 'WORKER_START_FAILED');
  assert.match(err.message, /the model file is missing/);
});

test('a module without a defineWorker default export fails with INVALID_WORKER', async () => {
  const err = await rejection(start({ workers: [{ module: fixture('no-default-worker') }] }));
  assert.equal(err.code, 'INVALID_WORKER');
  assert.match(err.message, /export default defineWorker/);
});

test('a missing module fails with INVALID_WORKER naming it', async () => {
  const err = await rejection(start({ workers: [{ module: fixture('does-not-exist') }] }));
  assert.equal(err.code, 'INVALID_WORKER');
  assert.match(err.message, /does-not-exist/);
});

test('close runs each worker teardown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'caphost-'));
  const marker = join(dir, 'marker');
  const controller = await start({ workers: [{ module: fixture('teardown-worker') }] });
  await controller.call('td.mark@1', { path: marker });
  await controller.close();
  assert.equal(readFileSync(marker, 'utf8'), 'torn down');
});

test('an unknown strategy is refused in words', async () => {
  const err = await rejection(start({ workers: [behave({ strategy: 'vm' as 'thread' })] }));
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, /strategy must be "thread" or "process"/);
});
