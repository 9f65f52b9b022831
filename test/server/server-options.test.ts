import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postJson, serve, waitFor, worker } from './fixtures.js';

test('server.defaultDeadlineMs bounds calls that set none; Caphost-Deadline-Ms sets one on the JSON route', async () => {
  const s = await serve({ workers: [{ module: worker('behave-worker') }] }, { defaultDeadlineMs: 100 });
  try {
    const late = await postJson(`${s.url}/v2/models/test.behave/infer`, { inputs: [{ name: 'mode', shape: [1], datatype: 'BYTES', data: ['sleep'] }, { name: 'ms', shape: [1], datatype: 'UINT32', data: [3000] }] });
    assert.deepEqual([late.status, late.body.code], [504, 'DEADLINE_EXCEEDED']);
    assert.match(late.body.error, /\(100 ms\)/);
    const header = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'sleep', ms: 3000 }, { 'Caphost-Deadline-Ms': '40' });
    assert.deepEqual([header.status, header.body.code], [504, 'DEADLINE_EXCEEDED']);
    assert.match(header.body.error, /\(40 ms\)/);
    const quick = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'echo', value: 'in time' });
    assert.deepEqual([quick.status, quick.body.value], [200, 'in time']);
  } finally {
    await s.server.close();
  }
});

test('server.callRoute: false turns the plain JSON route off; a draining server is not ready', async () => {
  const s = await serve({ workers: [{ module: worker('behave-worker') }] }, { callRoute: false });
  const off = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'echo' });
  assert.deepEqual([off.status, off.body.code], [404, 'INVALID_ARGUMENT']);
  assert.deepEqual(s.server.readiness(), { ready: true });
  const slow = postJson(`${s.url}/v2/models/test.behave/infer`, { inputs: [{ name: 'mode', shape: [1], datatype: 'BYTES', data: ['sleep'] }, { name: 'ms', shape: [1], datatype: 'UINT32', data: [200] }] });
  await waitFor(() => (s.controller.stats().workers[0]?.inFlight ?? 0) > 0);
  const closing = s.server.close({ graceMs: 5000 });
  assert.deepEqual(s.server.readiness(), { ready: false, reason: 'the server is shutting down' });
  const answered = await slow;
  assert.equal(answered.status, 200, 'an in-flight request finishes within the grace period');
  await closing;
});

test('a sandboxed process worker serves infer the same way', async () => {
  const s = await serve({ workers: [{ module: worker('tensor-worker'), strategy: 'process' }] });
  try {
    const res = await postJson(`${s.url}/v2/models/tensor.scale/infer`, { inputs: [{ name: 'values', shape: [3], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.outputs[0], { name: 'values', datatype: 'FP32', shape: [3], data: [2, 4, 6] });
    assert.equal(s.controller.stats().workers[0]!.state, 'running');
  } finally {
    await s.server.close();
  }
});
