import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Controller } from '../../src/index.js';
import { behave, fixture, rejection, start } from './fixtures.js';

let controller: Controller;
before(async () => {
  controller = await start({ workers: [{ module: fixture('versions-a') }, { module: fixture('versions-b') }, behave()] });
});
after(() => controller.close());

const served = async (capability: string): Promise<string> => (await controller.call<{ served: string }>(capability, { name: 'x' })).served;

test('name@major takes the highest minor of that major', async () => {
  assert.equal(await served('ver.op@1'), 'ver.op@1.3');
});

test('name@major.minor needs that minor or later within the major', async () => {
  assert.equal(await served('ver.op@1.0'), 'ver.op@1.3');
  assert.equal(await served('ver.op@1.3'), 'ver.op@1.3');
  assert.equal(await served('ver.op@2.0'), 'ver.op@2.0');
  const err = await rejection(controller.call('ver.op@1.4', { name: 'x' }));
  assert.equal(err.code, 'CAPABILITY_NOT_FOUND');
  assert.match(err.message, /ver\.op@1\.0, ver\.op@1\.3, ver\.op@2\.0/);
});

test('a bare name takes the highest major', async () => {
  assert.equal(await served('ver.op'), 'ver.op@2.0');
});

test('an unknown capability is CAPABILITY_NOT_FOUND, a malformed one INVALID_ARGUMENT', async () => {
  assert.equal((await rejection(controller.call('nope.nothing@1', {}))).code, 'CAPABILITY_NOT_FOUND');
  assert.equal((await rejection(controller.call('bad name!', {}))).code, 'INVALID_ARGUMENT');
  assert.equal((await rejection(controller.call('ver.op@1.x', {}))).code, 'INVALID_ARGUMENT');
});

test('input that does not fit the schema is SCHEMA_MISMATCH naming the field', async () => {
  const wrongType = await rejection(controller.call('test.behave@1', { mode: 5 }));
  assert.equal(wrongType.code, 'SCHEMA_MISMATCH');
  assert.equal(wrongType.details?.['field'], 'mode');
  assert.match(wrongType.message, /"mode"/);
  const unknown = await rejection(controller.call('test.behave@1', { mode: 'echo', colour: 'red' }));
  assert.equal(unknown.code, 'SCHEMA_MISMATCH');
  assert.equal(unknown.details?.['field'], 'colour');
  assert.equal((await rejection(controller.call('test.behave@1', null as never))).code, 'SCHEMA_MISMATCH');
});

test('output that does not fit the schema is SCHEMA_MISMATCH from the worker', async () => {
  const err = await rejection(controller.call('test.behave@1', { mode: 'bad-output' }));
  assert.equal(err.code, 'SCHEMA_MISMATCH');
  assert.match(err.message, /output field "value"/);
});

test('call options are checked', async () => {
  assert.equal((await rejection(controller.call('test.sync@1', {}, { deadlineMs: -1 }))).code, 'INVALID_ARGUMENT');
  assert.equal((await rejection(controller.call('test.sync@1', {}, { priority: Number.NaN }))).code, 'INVALID_ARGUMENT');
  assert.equal((await rejection(controller.call('test.sync@1', {}, { signal: {} as AbortSignal }))).code, 'INVALID_ARGUMENT');
});

test('a handler error is HANDLER_ERROR with its message; a coded error keeps its code; the worker lives on', async () => {
  const plain = await rejection(controller.call('test.behave@1', { mode: 'throw', value: 'x1' }));
  assert.equal(plain.code, 'HANDLER_ERROR');
  assert.match(plain.message, /asked to throw: x1/);
  const coded = await rejection(controller.call('test.behave@1', { mode: 'throw-coded', value: 'v' }));
  assert.equal(coded.code, 'INVALID_ARGUMENT');
  assert.equal((await controller.call<{ value: string }>('test.behave@1', { mode: 'echo', value: 'still here' })).value, 'still here');
  assert.ok(controller.stats().workers.every((w) => w.restarts === 0));
});
