/**
 * The handle table's promises, at the level of the device layer: a handle is unguessable and
 * grants nothing by itself; rights are checked for every use; a freed handle is invalid
 * everywhere; ranges beyond a buffer are refused; views keep memory alive past free().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandList, OP_WORDS } from '../../src/device/command-list.js';
import { Device } from '../../src/device/device.js';
import { loadDeviceBinding } from '../../src/device/device-binding.js';
import { DeviceTensor } from '../../src/device/device-tensor.js';

const binding = loadDeviceBinding();
const cpu = binding.openBackend('cpu');
const owner = new Device(binding, binding.newSession(), cpu);
const other = new Device(binding, binding.newSession(), cpu);

const code = (c: string) => (err: unknown) => (err as { code?: string }).code === c;

test('the TypeScript and native command encodings agree on their size', () => {
  assert.equal(OP_WORDS, binding.opWords);
});

test('handles are 128 random bits, different every time', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 64; i++) {
    const t = owner.alloc('f32', [1]);
    assert.match(t.handle, /^[0-9a-f]{32}$/);
    seen.add(t.handle);
    owner.free(t);
  }
  assert.equal(seen.size, 64);
});

test('a party without a grant is denied; a read grant does not allow writing', async () => {
  const a = await owner.upload(Float32Array.of(1, 2, 3), [3]);
  const out = owner.alloc('f32', [3]);
  const list = new CommandList().relu(a, out);
  await assert.rejects(other.run(list), (err: Error & { code?: string }) => err.code === 'HANDLE_DENIED' && /relu \(op 0\) x/.test(err.message));
  assert.throws(() => other.view(a), code('HANDLE_DENIED'));
  owner.grant(a, other.session, 'r');
  owner.grant(out, other.session, 'r');
  assert.deepEqual(Array.from(other.view(a, 'r')), [1, 2, 3]);
  await assert.rejects(other.run(list), (err: Error & { code?: string }) => err.code === 'HANDLE_DENIED' && /needs write/.test(err.message));
  await assert.rejects(other.write(a, Float32Array.of(0, 0, 0)), code('HANDLE_DENIED'));
  assert.throws(() => other.grant(a, owner.session, 'r'), code('HANDLE_DENIED'), 'a grant cannot be passed on');
  owner.grant(out, other.session, 'rw');
  await other.run(list);
  assert.deepEqual(Array.from(await other.download(out)), [1, 2, 3]);
  owner.revoke(out, other.session);
  await assert.rejects(other.run(list), code('HANDLE_DENIED'));
  assert.throws(() => other.free(a), code('HANDLE_DENIED'), 'only the owner frees');
  owner.free(a);
  owner.free(out);
});

test('a freed or made-up handle is HANDLE_INVALID everywhere; a view outlives free()', async () => {
  const a = await owner.upload(Float32Array.of(4, 5), [2]);
  const view = owner.view(a);
  owner.free(a);
  assert.deepEqual(Array.from(view), [4, 5], 'the memory stays valid while the view lives');
  assert.throws(() => owner.view(a), code('HANDLE_INVALID'));
  assert.throws(() => owner.free(a), code('HANDLE_INVALID'));
  await assert.rejects(owner.download(a), code('HANDLE_INVALID'));
  const forged = new DeviceTensor('0123456789abcdef0123456789abcdef', 0, 'f32', [2], 'rw');
  await assert.rejects(owner.run(new CommandList().relu(forged, forged)), code('HANDLE_INVALID'));
});

test('a tensor that reaches beyond its buffer is refused before anything runs', async () => {
  const small = owner.alloc('f32', [4]);
  const tooBig = new DeviceTensor(small.handle, 0, 'f32', [5], 'rw');
  const shifted = new DeviceTensor(small.handle, 8, 'f32', [3], 'rw');
  await assert.rejects(owner.run(new CommandList().relu(tooBig, small)), (err: Error & { code?: string }) => err.code === 'HANDLE_INVALID' && /beyond its buffer/.test(err.message));
  await assert.rejects(owner.run(new CommandList().relu(small, shifted)), code('HANDLE_INVALID'));
  await assert.rejects(owner.read(tooBig, new Float32Array(5)), code('HANDLE_INVALID'));
  owner.free(small);
});

test('shape and dtype errors name the op and the operand', async () => {
  const a = owner.alloc('f32', [2, 3]), b = owner.alloc('f32', [4, 5]), c = owner.alloc('f32', [2, 5]), ids = owner.alloc('i32', [2]);
  const reject = (list: CommandList, pattern: RegExp) =>
    assert.rejects(owner.run(list), (err: Error & { code?: string }) => err.code === 'INVALID_ARGUMENT' && pattern.test(err.message));
  await reject(new CommandList().relu(a, a).matmul(a, b, c), /matmul \(op 1\): inner dimensions differ/);
  await reject(new CommandList().layerNorm(a, c, c, a), /layerNorm \(op 0\): gamma must have shape \[3\]/);
  await reject(new CommandList().softmax(ids, ids), /softmax \(op 0\): x must be f32, got i32/);
  await reject(new CommandList().matmul(a, a.reshape([3, 2]), a.reshape([2, 3]).slice(0, 2)), /out/);
  for (const t of [a, b, c, ids]) owner.free(t);
});

test('free() and the table stats account for every buffer', () => {
  const before = owner.stats();
  const ts = [owner.alloc('f32', [10]), owner.alloc('u8', [3])];
  assert.deepEqual(owner.stats(), { handles: before.handles + 2, bytes: before.bytes + 43 });
  for (const t of ts) owner.free(t);
  assert.deepEqual(owner.stats(), before);
});
