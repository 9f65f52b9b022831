import assert from 'node:assert/strict';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { binaryOutput, jsonOutput, messageFromTensors, tensorSpecs } from '../../src/server/tensor-mapping.js';

const root = protobuf.parse(`
syntax = "proto3";
message In { repeated float x = 1; repeated uint32 x_shape = 2; int32 k = 3; repeated uint64 u = 4; bytes raw = 5; Inner nested = 6; map<string, int32> m = 7; }
message Inner { int32 a = 1; }
`, { keepCase: true }).root;
const In = root.lookupType('In');
const specs = new Map(tensorSpecs(In).map((s) => [s.name, s]));

test('tensor specs: numeric and bytes fields are tensors; messages, maps and shape companions are not', () => {
  assert.deepEqual(tensorSpecs(In).map((s) => [s.name, s.datatype, s.shape, s.shapeField ?? null]), [
    ['x', 'FP32', [-1], 'x_shape'],
    ['k', 'INT32', [1], null],
    ['u', 'UINT64', [-1], null],
    ['raw', 'BYTES', [1], null],
  ]);
});

test('JSON tensors become message fields; the shape goes to the companion field', () => {
  const message = messageFromTensors('m', specs, [
    { name: 'x', datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3, 4]] },
    { name: 'k', datatype: 'INT32', shape: [1], data: [7] },
    { name: 'raw', datatype: 'BYTES', shape: [1], data: ['ab'] },
  ], null);
  assert.deepEqual(message.x, [1, 2, 3, 4]);
  assert.deepEqual(message.x_shape, [2, 2]);
  assert.equal(message.k, 7);
  assert.deepEqual(message.raw, Buffer.from('ab'));
  assert.equal(In.verify(message), null);
});

test('binary tensors: sizes are checked, unaligned data is read correctly, 64-bit beyond 2^53 is refused', () => {
  const f = Buffer.alloc(9);
  Buffer.from(Float32Array.from([0.5, -1]).buffer).copy(f, 1);
  const message = messageFromTensors('m', specs, [{ name: 'x', datatype: 'FP32', shape: [2] }], [f.subarray(1)]);
  assert.deepEqual(message.x, [0.5, -1]);
  assert.throws(() => messageFromTensors('m', specs, [{ name: 'x', datatype: 'FP32', shape: [3] }], [f.subarray(1)]), /3 elements, which take 12 bytes, but binary_data_size is 8/);
  const big = Buffer.from(BigUint64Array.from([2n ** 60n]).buffer);
  assert.throws(() => messageFromTensors('m', specs, [{ name: 'u', datatype: 'UINT64', shape: [1] }], [big]), (err: { code: string }) => err.code === 'SCHEMA_MISMATCH');
});

test('singular fields take exactly one element; unknown and repeated inputs are refused by name', () => {
  assert.throws(() => messageFromTensors('m', specs, [{ name: 'k', datatype: 'INT32', shape: [2], data: [1, 2] }], null), /holds one element/);
  assert.throws(() => messageFromTensors('m', specs, [{ name: 'y', datatype: 'FP32', shape: [1], data: [1] }], null), /no input named "y"; its inputs are "x", "k", "u", "raw"/);
  assert.throws(() => messageFromTensors('m', specs, [{ name: 'k', datatype: 'INT32', shape: [1], data: [1] }, { name: 'k', datatype: 'INT32', shape: [1], data: [1] }], null), /given twice/);
  assert.throws(() => messageFromTensors('m', specs, [{ name: 'k', datatype: 'INT32', shape: [-1], data: [1] }], null), /non-negative integers/);
});

test('outputs: the companion field gives the shape and must agree with the data; binary encodings', () => {
  const x = specs.get('x')!;
  assert.deepEqual(jsonOutput('m', x, { x: [1, 2, 3, 4, 5, 6], x_shape: [3, 2] }), { name: 'x', datatype: 'FP32', shape: [3, 2], data: [1, 2, 3, 4, 5, 6] });
  assert.throws(() => jsonOutput('m', x, { x: [1, 2, 3], x_shape: [2, 2] }), /has 3 elements but its x_shape says \[2,2\]/);
  const { tensor, bytes } = binaryOutput('m', x, { x: [1.5, 2] });
  assert.deepEqual(tensor, { name: 'x', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } });
  assert.deepEqual([...new Float32Array(Uint8Array.from(bytes).buffer)], [1.5, 2]);
  const raw = binaryOutput('m', specs.get('raw')!, { raw: Buffer.from('xyz') });
  assert.deepEqual([...raw.bytes], [3, 0, 0, 0, 120, 121, 122]);
});
