import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { curl, getJson, postBinary, postJson, serve, waitFor, worker, type Served } from './fixtures.js';

describe('KServe v2 over HTTP against a real server', () => {
  let s: Served;
  before(async () => {
    s = await serve(
      { workers: [{ module: worker('tensor-worker') }, { module: worker('behave-worker') }] },
      { maxBodyBytes: 64 * 1024 },
      [
        { capability: 'tensor.scale@1', name: 'scale', version: '1' },
        { capability: 'tensor.mixed@1', name: undefined, version: undefined },
        { capability: 'test.behave@1', name: 'behave', version: undefined },
      ],
    );
  });
  after(() => s.server.close());

  test('health, server metadata and model metadata', async () => {
    assert.deepEqual(await getJson(`${s.url}/v2/health/live`), { status: 200, body: { live: true } });
    assert.deepEqual(await getJson(`${s.url}/v2/health/ready`), { status: 200, body: { ready: true } });
    const meta = await getJson(`${s.url}/v2`);
    assert.equal(meta.body.name, 'caphost');
    assert.ok(meta.body.extensions.includes('binary_tensor_data'));
    const model = await getJson(`${s.url}/v2/models/scale`);
    assert.equal(model.status, 200);
    assert.deepEqual(model.body.versions, ['1']);
    assert.deepEqual(model.body.inputs, [{ name: 'values', datatype: 'FP32', shape: [-1] }]);
    assert.deepEqual(model.body.outputs, [
      { name: 'values', datatype: 'FP32', shape: [-1] },
      { name: 'sum', datatype: 'FP32', shape: [1] },
    ]);
    assert.equal((await getJson(`${s.url}/v2/models/scale/versions/1`)).status, 200);
    assert.deepEqual(await getJson(`${s.url}/v2/models/scale/versions/1/ready`), { status: 200, body: { name: 'scale', ready: true } });
    // Unmapped names default to the capability's name and resolved version.
    assert.deepEqual((await getJson(`${s.url}/v2/models/tensor.mixed`)).body.versions, ['1.0']);
  });

  test('an infer request made with curl: JSON tensors in, JSON tensors out, shape kept', async () => {
    const request = { id: 'req-7', inputs: [{ name: 'values', shape: [2, 3], datatype: 'FP32', data: [[1, 2, 3], [4, 5, 6.5]] }] };
    const res = await curl(['-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(request), `${s.url}/v2/models/scale/infer`]);
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), {
      model_name: 'scale',
      model_version: '1',
      id: 'req-7',
      outputs: [
        { name: 'values', datatype: 'FP32', shape: [2, 3], data: [2, 4, 6, 8, 10, 13] },
        { name: 'sum', datatype: 'FP32', shape: [1], data: [21.5] },
      ],
    });
  });

  test('every datatype the mapping knows, as JSON', async () => {
    const res = await postJson(`${s.url}/v2/models/tensor.mixed/infer`, {
      inputs: [
        { name: 'ids', shape: [3], datatype: 'INT32', data: [1, -2, 3] },
        { name: 'big', shape: [2], datatype: 'INT64', data: [2 ** 40, -5] },
        { name: 'wide', shape: [1], datatype: 'FP64', data: [0.1] },
        { name: 'flags', shape: [2], datatype: 'BOOL', data: [true, false] },
        { name: 'text', shape: [1], datatype: 'BYTES', data: ['hello'] },
        { name: 'blobs', shape: [2], datatype: 'BYTES', data: ['one', 'two'] },
        { name: 'words', shape: [3], datatype: 'BYTES', data: ['a', 'b', 'c'] },
      ],
      outputs: [{ name: 'ids' }, { name: 'big' }, { name: 'wide' }, { name: 'flags' }, { name: 'text' }, { name: 'blobs' }, { name: 'words' }, { name: 'count' }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const out = Object.fromEntries(res.body.outputs.map((o: { name: string; data: unknown[]; datatype: string }) => [o.name, [o.datatype, o.data]]));
    assert.deepEqual(out, {
      ids: ['INT32', [2, -1, 4]],
      big: ['INT64', [2 ** 41, -10]],
      wide: ['FP64', [-0.1]],
      flags: ['BOOL', [false, true]],
      text: ['BYTES', ['HELLO']],
      blobs: ['BYTES', ['two', 'one']],
      words: ['BYTES', ['c', 'b', 'a']],
      count: ['UINT32', [3]],
    });
  });

  test('a body of many reads (60 KB of binary FP32, several requests in a row) comes through whole', async () => {
    // The native server reads into 128 KiB slabs: these bodies span reads and slab boundaries.
    for (let round = 0; round < 4; round++) {
      const values = Float32Array.from({ length: 15_000 }, (_, i) => i * 0.25 - round);
      const res = await postBinary(`${s.url}/v2/models/scale/infer`, {
        inputs: [{ name: 'values', shape: [values.length], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }],
        outputs: [{ name: 'values', parameters: { binary_data: true } }],
      }, [Buffer.from(values.buffer)]);
      assert.equal(res.status, 200);
      const out = new Float32Array(Uint8Array.from(res.binary).buffer);
      assert.equal(out.length, values.length);
      assert.ok(out.every((v, i) => v === values[i]! * 2), `round ${round}: the answer is not every value doubled`);
    }
  });

  test('binary tensor data extension: binary inputs, binary and JSON outputs in one response', async () => {
    const values = Float32Array.from([1.5, -2, 3.25, 4]);
    const words = Buffer.concat(['xy', 'hello'].map((w) => { const b = Buffer.alloc(4 + w.length); b.writeUInt32LE(w.length); b.write(w, 4); return b; }));
    const res = await postBinary(`${s.url}/v2/models/scale/infer`, {
      inputs: [{ name: 'values', shape: [2, 2], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }],
      outputs: [{ name: 'values', parameters: { binary_data: true } }, { name: 'sum' }],
    }, [Buffer.from(values.buffer)]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.outputs[0], { name: 'values', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } });
    assert.deepEqual(res.json.outputs[1], { name: 'sum', datatype: 'FP32', shape: [1], data: [6.75] });
    const out = new Float32Array(Uint8Array.from(res.binary).buffer);
    assert.deepEqual([...out], [3, -4, 6.5, 8]);

    // BYTES travel as 4-byte little-endian lengths + bytes, INT64 as 8 bytes each; binary_data_output asks for every output in binary.
    const big = BigInt64Array.from([7n, -3n]);
    const res2 = await postBinary(`${s.url}/v2/models/tensor.mixed/infer`, {
      parameters: { binary_data_output: true },
      inputs: [
        { name: 'words', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: words.length } },
        { name: 'big', shape: [2], datatype: 'INT64', parameters: { binary_data_size: 16 } },
      ],
      outputs: [{ name: 'words' }, { name: 'big' }],
    }, [words, Buffer.from(big.buffer)]);
    assert.equal(res2.status, 200);
    assert.deepEqual(res2.json.outputs.map((o: { parameters: { binary_data_size: number } }) => o.parameters.binary_data_size), [15, 16]);
    const wordsOut = res2.binary.subarray(0, 15);
    assert.equal(wordsOut.readUInt32LE(0), 5);
    assert.equal(wordsOut.toString('utf8', 4, 9), 'hello');
    assert.equal(wordsOut.readUInt32LE(9), 2);
    assert.equal(wordsOut.toString('utf8', 13, 15), 'xy');
    const bigOut = new BigInt64Array(Uint8Array.from(res2.binary.subarray(15)).buffer);
    assert.deepEqual([...bigOut], [14n, -6n]);
  });

  test('errors carry the protocol shape with our code', async () => {
    const infer = (model: string, body: unknown) => postJson(`${s.url}/v2/models/${model}/infer`, body);
    const nope = await infer('nope', { inputs: [] });
    assert.equal(nope.status, 404);
    assert.equal(nope.body.code, 'CAPABILITY_NOT_FOUND');
    assert.match(nope.body.error, /no model named "nope"; models served: scale, tensor.mixed, behave/);

    const wrongType = await infer('scale', { inputs: [{ name: 'values', shape: [1], datatype: 'INT32', data: [1] }] });
    assert.deepEqual([wrongType.status, wrongType.body.code, wrongType.body.details.tensor], [400, 'SCHEMA_MISMATCH', 'values']);

    const wrongShape = await infer('scale', { inputs: [{ name: 'values', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(wrongShape.status, 400);
    assert.match(wrongShape.body.error, /shape \[2,2\] \(4 elements\) but 3 data elements/);

    const notNumber = await infer('scale', { inputs: [{ name: 'values', shape: [2], datatype: 'FP32', data: [1, 'x'] }] });
    assert.match(notNumber.body.error, /non-number at element 1/);

    const outOfRange = await infer('tensor.mixed', { inputs: [{ name: 'ids', shape: [1], datatype: 'INT32', data: [2 ** 31] }] });
    assert.deepEqual([outOfRange.status, outOfRange.body.code], [400, 'SCHEMA_MISMATCH']);

    const badJson = await postJson(`${s.url}/v2/models/scale/infer`, '{"inputs": [');
    assert.deepEqual([badJson.status, badJson.body.code], [400, 'INVALID_ARGUMENT']);

    const unknownOutput = await infer('scale', { inputs: [{ name: 'values', shape: [1], datatype: 'FP32', data: [1] }], outputs: [{ name: 'nope' }] });
    assert.deepEqual([unknownOutput.status, unknownOutput.body.code], [400, 'SCHEMA_MISMATCH']);

    const tooBig = await infer('scale', { inputs: [{ name: 'values', shape: [20000], datatype: 'FP32', data: new Array(20000).fill(1.25) }] });
    assert.deepEqual([tooBig.status, tooBig.body.code], [413, 'PAYLOAD_TOO_LARGE']);

    const method = await fetch(`${s.url}/v2/models/scale/infer`);
    assert.equal(method.status, 405);
    assert.equal(((await method.json()) as { code: string }).code, 'INVALID_ARGUMENT');

    const encoding = await getJson(`${s.url}/v2/models/%E0%A4%A/ready`);
    assert.deepEqual([encoding.status, encoding.body.code], [400, 'INVALID_ARGUMENT']);

    const route = await getJson(`${s.url}/v3/whatever`);
    assert.deepEqual([route.status, route.body.code], [404, 'INVALID_ARGUMENT']);

    const handler = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'throw', value: 'boom' });
    assert.deepEqual([handler.status, handler.body.code], [500, 'HANDLER_ERROR']);
    assert.match(handler.body.error, /asked to throw: boom/);

    // Triton's timeout parameter, in microseconds, is the call's deadline.
    const late = await infer('behave', { parameters: { timeout: 50_000 }, inputs: [{ name: 'mode', shape: [1], datatype: 'BYTES', data: ['sleep'] }, { name: 'ms', shape: [1], datatype: 'UINT32', data: [3000] }] });
    assert.deepEqual([late.status, late.body.code], [504, 'DEADLINE_EXCEEDED']);
  });

  test('the plain JSON route takes and gives messages (bytes as base64)', async () => {
    const res = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'echo', value: 'hi', data: Buffer.from('raw').toString('base64') });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { value: 'hi', aborted: false, data: Buffer.from('raw').toString('base64'), replica: 0 });
    const unknown = await postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'echo', colour: 'red' });
    assert.deepEqual([unknown.status, unknown.body.code, unknown.body.details.field], [400, 'SCHEMA_MISMATCH', 'colour']);
    const list = await getJson(`${s.url}/caphost/v1/capabilities`);
    assert.ok(list.body.capabilities.some((c: { capability: string }) => c.capability === 'test.behave@1.0'));
  });

  test('a client that goes away cancels its call', async () => {
    const before = s.controller.stats().capabilities['test.behave@1']?.errors['CANCELLED'] ?? 0;
    const abort = new AbortController();
    const pending = fetch(`${s.url}/caphost/v1/capabilities/test.behave@1`, { method: 'POST', body: JSON.stringify({ mode: 'sleep', ms: 5000 }), signal: abort.signal }).catch((err: Error) => err);
    await waitFor(() => (s.controller.stats().workers.find((w) => w.worker.startsWith('behave'))?.inFlight ?? 0) > 0);
    abort.abort();
    assert.ok((await pending) instanceof Error);
    await waitFor(() => (s.controller.stats().capabilities['test.behave@1']?.errors['CANCELLED'] ?? 0) === before + 1);
  });

  test('/metrics: counts by outcome, latency histograms, batch sizes, queue depth, workers, memory', async () => {
    for (let i = 0; i < 3; i++) await postJson(`${s.url}/v2/models/scale/infer`, { inputs: [{ name: 'values', shape: [1], datatype: 'FP32', data: [i] }] });
    const res = await fetch(`${s.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    const value = (line: string): number => {
      const found = text.split('\n').find((l) => l.startsWith(`${line} `));
      assert.ok(found !== undefined, `no metric line ${line}`);
      return Number(found.slice(line.length + 1));
    };
    const ok = value('caphost_calls_total{capability="tensor.scale@1",outcome="OK"}');
    assert.ok(ok >= 4, `OK calls: ${ok}`);
    assert.equal(value('caphost_calls_total{capability="test.behave@1",outcome="HANDLER_ERROR"}'), 1);
    assert.ok(value('caphost_calls_total{capability="test.behave@1",outcome="DEADLINE_EXCEEDED"}') >= 1);
    for (const kind of ['queue', 'compute', 'total']) assert.equal(value(`caphost_call_${kind}_seconds_count{capability="tensor.scale@1"}`), ok);
    assert.equal(value('caphost_batch_size_count{capability="tensor.scale@1"}'), ok);
    assert.equal(value('caphost_queue_depth{capability="tensor.scale@1"}'), 0);
    assert.equal(value('caphost_worker_restarts_total{worker="tensor-worker.js#0.0"}'), 0);
    assert.equal(value('caphost_worker_up{worker="tensor-worker.js#0.0",state="running"}'), 1);
    assert.equal(value('caphost_device_memory_bytes{device="cpu:arena",kind="capacity"}'), 64 * 1024 * 1024);
    const device = s.controller.stats().device;
    assert.equal(value(`caphost_device_memory_bytes{device="${device.backend}",kind="in_use"}`), device.bytesInUse);
    assert.equal(value(`caphost_device_buffers{device="${device.backend}"}`), device.buffers);
    assert.ok(value('caphost_http_requests_total{route="infer",status="200"}') >= 3);
    assert.match(text, /caphost_nodejs_eventloop_lag_seconds/);
  });
});
