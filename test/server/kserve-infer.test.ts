import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { inferResponse, parseInferRequest } from '../../src/server/kserve-infer.js';
import type { Model } from '../../src/server/model-table.js';
import { tensorSpecs } from '../../src/server/tensor-mapping.js';

const root = protobuf.parse(`
syntax = "proto3";
message Out { repeated float x = 1; repeated uint32 x_shape = 2; int32 k = 3; string label = 4; }
`, { keepCase: true }).root;
const specs = tensorSpecs(root.lookupType('Out'));
const model: Model = {
  name: 'm "1"',
  version: 'v\u00e9',
  capability: 'test.out@1',
  key: 'test.out@1.0',
  inputs: new Map(specs.map((s) => [s.name, s])),
  outputs: specs,
  deviceOutputs: false,
  metadataJson: '{}',
};
const output = { x: [0.10000000149011612, -2.5, NaN, 1e-7], x_shape: [2, 2], k: 7, label: 'caf\u00e9 "quoted"' };
const body = (request: object) => Buffer.from(JSON.stringify(request));
const input = { name: 'k', shape: [1], datatype: 'INT32', data: [1] };

test('a JSON response is byte for byte what JSON.stringify makes of the response object', () => {
  for (const request of [{ inputs: [input] }, { id: 'r-\u00e9"1', inputs: [input], outputs: [{ name: 'label' }, { name: 'x' }] }]) {
    const plan = parseInferRequest(model, body(request), undefined, undefined);
    const { body: out, jsonLength } = inferResponse(model, plan, output);
    assert.equal(jsonLength, undefined);
    const outputs = plan.outputs.map((o) => o.spec.name);
    const expected = {
      model_name: model.name,
      model_version: model.version,
      ...(plan.id === undefined ? {} : { id: plan.id }),
      outputs: outputs.map((name) =>
        name === 'x'
          ? { name, datatype: 'FP32', shape: [2, 2], data: output.x }
          : name === 'k'
            ? { name, datatype: 'INT32', shape: [1], data: [7] }
            : { name, datatype: 'BYTES', shape: [1], data: [output.label] },
      ),
    };
    assert.equal(out, JSON.stringify(expected));
  }
});

test('binary outputs follow the JSON header, whose length the response gives', () => {
  const plan = parseInferRequest(model, body({ inputs: [input], outputs: [{ name: 'k' }, { name: 'x', parameters: { binary_data: true } }] }), undefined, undefined);
  const { body: out, jsonLength } = inferResponse(model, plan, output);
  assert.ok(Buffer.isBuffer(out) && jsonLength !== undefined);
  const header = JSON.parse(out.subarray(0, jsonLength).toString('utf8')) as { outputs: { name: string; data?: number[]; parameters?: { binary_data_size: number } }[] };
  assert.deepEqual(header.outputs[0], { name: 'k', datatype: 'INT32', shape: [1], data: [7] });
  assert.deepEqual(header.outputs[1], { name: 'x', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } });
  assert.deepEqual(Array.from(new Float32Array(out.buffer.slice(out.byteOffset + jsonLength, out.byteOffset + out.length))), Array.from(Float32Array.from(output.x)));
});
