import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Controller } from '../../src/index.js';
import { InferenceServer } from '../../src/server/inference-server.js';
import { resolveServerSection } from '../../src/server/server-config.js';
import { createConsoleLogger } from '../../src/logger.js';
import { getJson, postJson, serve, waitFor, worker } from './fixtures.js';

test('live while workers start, ready only once every worker has finished setup', async () => {
  const logger = createConsoleLogger('silent');
  const server = await InferenceServer.listen({ ...resolveServerSection({ port: 0 }), models: undefined, logger });
  try {
    const starting = Controller.start({ workers: [{ module: worker('slow-setup-worker') }, { module: worker('tensor-worker') }], logger });
    assert.deepEqual(await getJson(`${server.url}/v2/health/live`), { status: 200, body: { live: true } });
    const notYet = await getJson(`${server.url}/v2/health/ready`);
    assert.equal(notYet.status, 400);
    assert.deepEqual(notYet.body, { ready: false, reason: 'workers are still starting' });
    const early = await postJson(`${server.url}/v2/models/tensor.scale/infer`, { inputs: [{ name: 'values', shape: [1], datatype: 'FP32', data: [1] }] });
    assert.deepEqual([early.status, early.body.code], [503, 'CAPABILITY_UNAVAILABLE']);
    server.attach(await starting);
    assert.deepEqual(await getJson(`${server.url}/v2/health/ready`), { status: 200, body: { ready: true } });
    assert.deepEqual(await getJson(`${server.url}/v2/models/slow.echo/ready`), { status: 200, body: { name: 'slow.echo', ready: true } });
  } finally {
    await server.close();
  }
});

test('a worker that cannot be restarted turns readiness off for its capabilities only', async () => {
  const s = await serve({
    workers: [{ module: worker('behave-worker') }, { module: worker('tensor-worker') }],
    restart: { initialDelayMs: 1, maxDelayMs: 5, maxCrashes: 1, windowMs: 60_000 },
  });
  try {
    assert.equal((await getJson(`${s.url}/v2/models/test.behave/ready`)).status, 200);
    const behave = () => s.controller.stats().workers.find((w) => w.worker.startsWith('behave'))!;
    // Two crashes within the window with maxCrashes 1: the first is restarted, the second is not.
    for (let crash = 0; crash < 2; crash++) {
      await waitFor(() => behave().state === 'running');
      const res = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'exit' });
      assert.deepEqual([res.status, res.body.code], [503, 'WORKER_CRASHED']);
      if (crash === 0) assert.equal((await getJson(`${s.url}/v2/health/ready`)).status, 200, 'a restarting worker is still ready');
    }
    await waitFor(() => behave().state === 'failed');

    const ready = await getJson(`${s.url}/v2/health/ready`);
    assert.equal(ready.status, 400);
    assert.match(ready.body.reason, /test\.behave@1\.0 has failed and cannot be restarted/);
    assert.deepEqual(await getJson(`${s.url}/v2/models/test.behave/ready`), { status: 400, body: { name: 'test.behave', ready: false } });
    assert.deepEqual(await getJson(`${s.url}/v2/models/tensor.scale/ready`), { status: 200, body: { name: 'tensor.scale', ready: true } });
    assert.deepEqual(await getJson(`${s.url}/v2/health/live`), { status: 200, body: { live: true } });

    const refused = await postJson(`${s.url}/v2/models/test.behave/infer`, { inputs: [{ name: 'mode', shape: [1], datatype: 'BYTES', data: ['echo'] }] });
    assert.deepEqual([refused.status, refused.body.code], [503, 'CAPABILITY_UNAVAILABLE']);
    const served = await postJson(`${s.url}/v2/models/tensor.scale/infer`, { inputs: [{ name: 'values', shape: [1], datatype: 'FP32', data: [2] }] });
    assert.equal(served.status, 200);

    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /caphost_worker_restarts_total\{worker="behave-worker\.js#0\.0"\} 1\n/);
    assert.match(metrics, /caphost_worker_up\{worker="behave-worker\.js#0\.0",state="failed"\} 0\n/);
    assert.match(metrics, /caphost_calls_total\{capability="test\.behave@1",outcome="WORKER_CRASHED"\} 2\n/);
  } finally {
    await s.server.close();
  }
});
