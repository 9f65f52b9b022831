/**
 * Tensors through calls on the CPU backend, with thread and with sandboxed process workers: a DeviceTensor input is granted
 * to the worker that runs the call for the call's duration, read in place, and revoked after; a
 * tensor the worker creates goes back to the caller, who owns it; weights load once and are
 * granted read-only; a handle that was not granted or was freed is refused in the worker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, DeviceTensor, writeSafetensors } from '../../src/index.js';
import { fixture, rejection, start } from './fixtures.js';

for (const strategy of ['thread', 'process'] as const) {
describe(`tensors through calls, ${strategy} workers`, () => {
  let controller: Controller;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'caphost-tensor-'));
    const weights = join(dir, 'w.safetensors');
    await writeSafetensors(weights, { w: { dtype: 'F32', shape: [4], data: Float32Array.of(1, 2, 3, 4) }, b: { dtype: 'F32', shape: [2], data: Float32Array.of(5, 6) } });
    controller = await start({ device: 'cpu', workers: [{ module: fixture('device-tensor-worker'), strategy, replicas: 2, weights, config: { model: 'mini', layers: [1, 2] } }] });
  });

  after(async () => {
    await controller?.close();
    rmSync(dir, { recursive: true, force: true });
  });

    test('the controller reports the device it chose and why', () => {
    const { device } = controller.stats();
    assert.equal(device.backend, 'cpu');
    assert.match(device.reason, /cpu/);
    assert.equal(controller.device.backend, 'cpu');
  });

    test('a device tensor goes in by reference and a new one comes back, owned by the caller', async () => {
    const x = await controller.device.upload(Float32Array.of(1, -2, 3), [3]);
    const out = await controller.call<{ y: DeviceTensor; note: string }>('tensor.scale@1', { x, factor: 2 });
    assert.equal(out.note, 'device');
    assert.ok(out.y instanceof DeviceTensor);
    assert.deepEqual(out.y.shape, [3]);
    assert.deepEqual(Array.from(await controller.device.download(out.y)), [2, -4, 6]);
    controller.device.free(out.y);
    controller.device.free(x);
  });

    test('a host tensor ({ data, shape }) crosses inline', async () => {
    const out = await controller.call<{ y: { data: Float32Array; shape: number[] }; note: string }>('tensor.scale@1', { x: { data: Float32Array.of(1, 2), shape: [2] }, factor: 3 });
    assert.equal(out.note, 'inline');
    assert.deepEqual(Array.from(out.y.data), [3, 6]);
  });

    test('a granted tensor is read in place: no copy, whatever its size', async () => {
    const big = controller.device.alloc('f32', [1 << 20]);
    controller.device.view(big).fill(0.5);
    const out = await controller.call<{ sum: number; note: string }>('tensor.peek@1', { x: big.readOnly() });
    assert.equal(out.sum, (1 << 20) * 0.5);
    assert.equal(out.note, String(1 << 20));
    controller.device.free(big);
  });

    test('a read grant does not let the worker write; a read-write grant does', async () => {
    const t = await controller.device.upload(Float32Array.of(1, 1), [2]);
    const denied = await rejection(controller.call('tensor.fill@1', { x: t.readOnly(), factor: 7 }));
    assert.equal(denied.code, 'HANDLE_DENIED');
    assert.deepEqual(Array.from(controller.device.view(t)), [1, 1]);
    await controller.call('tensor.fill@1', { x: t, factor: 7 });
    assert.deepEqual(Array.from(controller.device.view(t)), [7, 7]);
    controller.device.free(t);
  });

    test('a handle the call did not grant is denied; after the call its grant is gone', async () => {
    const t = await controller.device.upload(Float32Array.of(42), [1]);
    const denied = await rejection(controller.call('tensor.steal@1', { handle: t.handle }));
    assert.equal(denied.code, 'HANDLE_DENIED');
    await controller.call('tensor.peek@1', { x: t.readOnly() });
    const after = await rejection(controller.call('tensor.steal@1', { handle: t.handle }));
    assert.equal(after.code, 'HANDLE_DENIED', 'the grant ended with the call');
    controller.device.free(t);
    const freed = await rejection(controller.call('tensor.steal@1', { handle: t.handle }));
    assert.equal(freed.code, 'HANDLE_INVALID');
  });

    test('a freed tensor passed to a call fails it with HANDLE_INVALID', async () => {
    const t = await controller.device.upload(Float32Array.of(1), [1]);
    controller.device.free(t);
    const err = await rejection(controller.call('tensor.peek@1', { x: t }));
    assert.equal(err.code, 'HANDLE_INVALID');
  });

    test('weights load once, read-only, and every replica is granted them', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => controller.call<{ sum: number; note: string }>('tensor.weights@1', {})));
    for (const a of answers) {
      assert.equal(a.sum, 10);
      assert.equal(a.note, 'b,w');
    }
  });

    test('a process worker writing through a read grant faults in its own process; the buffer is untouched', { skip: strategy === 'thread' ? 'a thread worker shares the address space: read grants bind it by contract, not by the MMU' : false }, async () => {
      const t = await controller.device.upload(Float32Array.of(3), [1]);
      const err = await rejection(controller.call('tensor.scribble@1', { x: t.readOnly() }));
      assert.equal(err.code, 'WORKER_CRASHED');
      assert.deepEqual(Array.from(controller.device.view(t)), [3]);
      controller.device.free(t);
      await controller.call('tensor.weights@1', {});
    });

    test("setup receives the entry's config as plain data", async () => {
      const out = await controller.call<{ note: string }>('tensor.config@1', {});
      assert.deepEqual(JSON.parse(out.note), { model: 'mini', layers: [1, 2] });
    });

    test('buffers do not leak across calls', async () => {
    const before = controller.stats().device.buffers;
    for (let i = 0; i < 20; i++) {
      const x = await controller.device.upload(Float32Array.of(i), [1]);
      const out = await controller.call<{ y: DeviceTensor }>('tensor.scale@1', { x, factor: 2 });
      controller.device.free(out.y);
      controller.device.free(x);
    }
    assert.equal(controller.stats().device.buffers, before);
  });

});
}

test('a config that is not plain JSON is refused at start, naming the option', async () => {
  await assert.rejects(start({ workers: [{ module: fixture('device-tensor-worker'), config: { n: 1n } }] }), (err: { code?: string; message: string }) => err.code === 'INVALID_ARGUMENT' && /workers\[0\]\.config/.test(err.message));
});
