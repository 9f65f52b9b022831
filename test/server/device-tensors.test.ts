import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getJson, postJson, serve, worker, type Served } from './fixtures.js';

describe('caphost.Tensor fields over KServe v2', () => {
  let s: Served;
  before(async () => {
    s = await serve({ workers: [{ module: worker('device-double-worker') }] });
  });
  after(() => s.server.close());

  test('metadata lists tensor fields with the datatypes they take', async () => {
    const meta = (await getJson(`${s.url}/v2/models/devtensor.double`)).body;
    assert.deepEqual(meta.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1], parameters: { caphost_tensor: true, datatypes: ['FP32', 'FP16', 'BF16', 'INT32', 'UINT8'] } }]);
    assert.deepEqual(meta.outputs.map((o: { name: string }) => o.name), ['inline', 'device', 'count']);
  });

  test('JSON in, JSON out: inline and device tensors come back with their shape; device buffers are freed', async () => {
    const buffers = s.controller.stats().device.buffers;
    const res = await postJson(`${s.url}/v2/models/devtensor.double/infer`, { inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4.5] }] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.outputs, [
      { name: 'inline', datatype: 'FP32', shape: [2, 2], data: [2, 4, 6, 9] },
      { name: 'device', datatype: 'FP32', shape: [2, 2], data: [2, 4, 6, 9] },
      { name: 'count', datatype: 'UINT32', shape: [1], data: [4] },
    ]);
    assert.equal(s.controller.stats().device.buffers, buffers, 'the device tensor the worker returned was freed');
  });

  test('binary INT32 in, binary out', async () => {
    const x = Int32Array.from([5, -7, 9]);
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'x', shape: [3], datatype: 'INT32', parameters: { binary_data_size: 12 } }],
      outputs: [{ name: 'device', parameters: { binary_data: true } }],
    }));
    const res = await fetch(`${s.url}/v2/models/devtensor.double/infer`, { method: 'POST', headers: { 'Inference-Header-Content-Length': String(header.length) }, body: Buffer.concat([header, Buffer.from(x.buffer)]) });
    assert.equal(res.status, 200);
    const len = Number(res.headers.get('inference-header-content-length'));
    const body = Buffer.from(await res.arrayBuffer());
    const json = JSON.parse(body.toString('utf8', 0, len));
    assert.deepEqual(json.outputs, [{ name: 'device', datatype: 'INT32', shape: [3], parameters: { binary_data_size: 12 } }]);
    assert.deepEqual([...new Int32Array(Uint8Array.from(body.subarray(len)).buffer)], [10, -14, 18]);
  });

  test('FP16 has no JSON form; the plain JSON route takes tensors as { dtype, shape, data }', async () => {
    const half = await postJson(`${s.url}/v2/models/devtensor.double/infer`, { inputs: [{ name: 'x', shape: [1], datatype: 'FP16', data: [1] }] });
    assert.deepEqual([half.status, half.body.code], [400, 'SCHEMA_MISMATCH']);
    const res = await postJson(`${s.url}/caphost/v1/capabilities/devtensor.double@1`, { x: { dtype: 'f32', shape: [2], data: [1.5, -1] } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.count, 2);
    for (const key of ['inline', 'device']) {
      assert.equal(res.body[key].dtype, 'f32');
      assert.deepEqual(res.body[key].shape, [2]);
      assert.deepEqual([...new Float32Array(Uint8Array.from(Buffer.from(res.body[key].data, 'base64')).buffer)], [3, -2]);
    }
  });
});
