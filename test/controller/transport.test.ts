import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, rejection, start, type Answer } from './fixtures.js';

test('payloads larger than a slot cross through the overflow ring both ways', async () => {
  const controller = await start({ workers: [behave()], transport: { slotBytes: 256, overflowBytes: 1 << 16 } });
  try {
    for (const size of [100, 300, 5000, 40_000]) {
      const data = new Uint8Array(size).map((_, i) => i % 251);
      const answer = await controller.call<Answer>('test.behave@1', { mode: 'echo', data });
      assert.deepEqual(answer.data, Buffer.from(data));
      const big = await controller.call<Answer>('test.behave@1', { mode: 'big', ms: size });
      assert.equal(big.data.length, size);
      assert.ok(big.data.every((b) => b === 7));
    }
    // Many at once: the overflow ring wraps and applies back-pressure without losing any.
    const many = await Promise.all(Array.from({ length: 64 }, (_, i) => controller.call<Answer>('test.behave@1', { mode: 'echo', data: new Uint8Array(3000).fill(i) })));
    many.forEach((a, i) => assert.ok(a.data.length === 3000 && a.data[0] === i));
  } finally {
    await controller.close();
  }
});

test('a payload larger than the channel can carry is PAYLOAD_TOO_LARGE, either way', async () => {
  const controller = await start({ workers: [behave()], transport: { overflowBytes: 1 << 14 } });
  try {
    const input = await rejection(controller.call('test.behave@1', { mode: 'echo', data: new Uint8Array(1 << 15) }));
    assert.equal(input.code, 'PAYLOAD_TOO_LARGE');
    assert.match(input.message, /controller\.arena/);
    const output = await rejection(controller.call('test.behave@1', { mode: 'big', ms: 1 << 15 }));
    assert.equal(output.code, 'PAYLOAD_TOO_LARGE');
  } finally {
    await controller.close();
  }
});

test('arena views cross by reference: the worker writes in place and returns the same memory', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const view = controller.arena.alloc(1 << 20);
    const answer = await controller.call<Answer>('test.behave@1', { mode: 'write-in-place', data: view });
    assert.ok(view.every((b) => b === 9), 'the worker wrote into the caller’s memory');
    assert.equal(answer.data.buffer, view.buffer);
    assert.equal(answer.data.byteOffset, view.byteOffset);
    assert.equal(answer.data.byteLength, view.byteLength);
    const floats = controller.arena.allocArray(Float32Array, 1024);
    floats.fill(1.5);
    const echoed = await controller.call<Answer>('test.behave@1', { mode: 'echo', data: floats });
    assert.equal(new Float32Array(echoed.data.buffer, echoed.data.byteOffset, 1024)[1023], 1.5);
    controller.arena.free(view);
    controller.arena.free(floats);
    assert.equal(controller.stats().arena.inUse, 0);
  } finally {
    await controller.close();
  }
});

test('a typed array outside the arena travels as its bytes', async () => {
  const controller = await start({ workers: [behave()] });
  try {
    const floats = new Float32Array([1, 2, 3]);
    const answer = await controller.call<Answer>('test.behave@1', { mode: 'echo', data: floats });
    assert.deepEqual(Array.from(new Float32Array(Uint8Array.from(answer.data).buffer)), [1, 2, 3]);
  } finally {
    await controller.close();
  }
});
