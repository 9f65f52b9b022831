import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaphostError, ErrorCode } from '../../src/errors.js';
import { parseCapabilityId } from '../../src/router/capability-ref.js';
import { CapabilityRegistry } from '../../src/router/capability-registry.js';
import { compileSchema } from '../../src/router/capability-schema.js';

const PROTO = `
syntax = "proto3";
package test.echo;
message Req { bytes data = 1; }
message Res { bytes data = 1; string note = 2; }
`;
const schema = compileSchema('echo.bytes@1.0', { proto: PROTO, input: 'test.echo.Req', output: 'test.echo.Res' });
const other = compileSchema('embed.text@2.0', { proto: 'syntax = "proto3"; message In { string text = 1; } message Out { repeated float v = 1; }', input: 'In', output: 'Out' });

const cap = (text: string, s = schema) => ({ id: parseCapabilityId(text), schema: s });

function registry(): CapabilityRegistry {
  const r = new CapabilityRegistry();
  r.add(1, false, true, [cap('echo.bytes@1.0'), cap('embed.text@2.0', other)]);
  r.add(2, false, true, [cap('echo.bytes@1.2')]);
  r.add(3, true, true, [cap('echo.bytes@1.2')]);
  r.add(4, false, true, [cap('echo.bytes@2.0')]);
  return r;
}

function assertNotFound(fn: () => unknown, text: string, hint: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CaphostError);
    assert.equal(error.code, ErrorCode.CAPABILITY_NOT_FOUND);
    assert.equal(error.message, `no worker provides capability "${text}"; ${hint}`);
    assert.deepEqual(error.details, { capability: text });
    return true;
  });
}

describe('CapabilityRegistry.add / table', () => {
  it('records key, index in the provider table, locality and schema', () => {
    const r = registry();
    const rows = r.table.map((e) => [e.provider, e.key, e.index, e.remote]);
    assert.deepEqual(rows, [
      [1, 'echo.bytes@1.0', 0, false],
      [1, 'embed.text@2.0', 1, false],
      [2, 'echo.bytes@1.2', 0, false],
      [3, 'echo.bytes@1.2', 0, true],
      [4, 'echo.bytes@2.0', 0, false],
    ]);
    assert.equal(r.table[1]!.schema, other);
  });
});

describe('CapabilityRegistry.group', () => {
  it('resolves a request to its candidates in static order', () => {
    const r = registry();
    const g = r.group('echo.bytes@1');
    assert.equal(g.text, 'echo.bytes@1');
    assert.deepEqual(g.request, { name: 'echo.bytes', major: 1, minor: undefined });
    assert.deepEqual(g.candidates.map((c) => [c.provider, c.key]), [
      [2, 'echo.bytes@1.2'],
      [1, 'echo.bytes@1.0'],
      [3, 'echo.bytes@1.2'],
    ]);
    assert.deepEqual(r.group('echo.bytes@1.1').candidates.map((c) => c.provider), [2, 3]);
    assert.deepEqual(r.group('echo.bytes').candidates.map((c) => c.provider), [4]);
  });

  it('caches the group per request text', () => {
    const r = registry();
    const g = r.group('echo.bytes@1');
    assert.equal(r.group('echo.bytes@1'), g);
    // Different text for the same request is its own cache entry.
    assert.notEqual(r.group('echo.bytes@1.0'), g);
  });

  it('drops the cache on add and on remove', () => {
    const r = registry();
    const g1 = r.group('echo.bytes@1');
    r.add(5, false, true, [cap('echo.bytes@1.3')]);
    const g2 = r.group('echo.bytes@1');
    assert.notEqual(g2, g1);
    assert.equal(g2.candidates[0]!.provider, 5);
    r.remove(5);
    const g3 = r.group('echo.bytes@1');
    assert.notEqual(g3, g2);
    assert.deepEqual(g3.candidates.map((c) => c.provider), [2, 1, 3]);
  });

  it('throws CAPABILITY_NOT_FOUND listing the versions provided under that name', () => {
    const r = registry();
    assertNotFound(() => r.group('echo.bytes@3'), 'echo.bytes@3', 'versions provided: echo.bytes@1.0, echo.bytes@1.2, echo.bytes@2.0');
    assertNotFound(() => r.group('echo.bytes@1.5'), 'echo.bytes@1.5', 'versions provided: echo.bytes@1.0, echo.bytes@1.2, echo.bytes@2.0');
  });

  it('throws CAPABILITY_NOT_FOUND listing every capability when the name is unknown', () => {
    const r = registry();
    assertNotFound(() => r.group('nope@1'), 'nope@1', 'capabilities provided: echo.bytes@1.0, echo.bytes@1.2, echo.bytes@2.0, embed.text@2.0');
    assertNotFound(() => new CapabilityRegistry().group('nope'), 'nope', 'capabilities provided: none');
  });

  it('does not cache a failure: a provider added later is found', () => {
    const r = registry();
    assert.throws(() => r.group('echo.bytes@3'), { code: ErrorCode.CAPABILITY_NOT_FOUND });
    r.add(6, false, true, [cap('echo.bytes@3.0')]);
    assert.deepEqual(r.group('echo.bytes@3').candidates.map((c) => c.provider), [6]);
  });

  it('throws INVALID_ARGUMENT for malformed request text', () => {
    assert.throws(() => registry().group('echo.bytes@x'), { code: ErrorCode.INVALID_ARGUMENT });
  });
});

describe('CapabilityRegistry.remove', () => {
  it('removes every capability of that provider and nothing else', () => {
    const r = registry();
    r.remove(1);
    assert.deepEqual(r.table.map((e) => [e.provider, e.key]), [
      [2, 'echo.bytes@1.2'],
      [3, 'echo.bytes@1.2'],
      [4, 'echo.bytes@2.0'],
    ]);
    assertNotFound(() => r.group('embed.text@2'), 'embed.text@2', 'capabilities provided: echo.bytes@1.2, echo.bytes@2.0');
    assert.deepEqual(r.group('echo.bytes@1.0').candidates.map((c) => c.provider), [2, 3]);
  });

  it('is a no-op for an unknown provider', () => {
    const r = registry();
    r.remove(99);
    assert.equal(r.table.length, 5);
  });
});

describe('CapabilityRegistry.describe', () => {
  it('lists each capability once, sorted, with provider count and message names', () => {
    assert.deepEqual(registry().describe(), [
      { capability: 'echo.bytes@1.0', name: 'echo.bytes', version: '1.0', providers: 1, input: 'test.echo.Req', output: 'test.echo.Res' },
      { capability: 'echo.bytes@1.2', name: 'echo.bytes', version: '1.2', providers: 2, input: 'test.echo.Req', output: 'test.echo.Res' },
      { capability: 'echo.bytes@2.0', name: 'echo.bytes', version: '2.0', providers: 1, input: 'test.echo.Req', output: 'test.echo.Res' },
      { capability: 'embed.text@2.0', name: 'embed.text', version: '2.0', providers: 1, input: 'In', output: 'Out' },
    ]);
  });

  it('follows removals and is empty for an empty registry', () => {
    const r = registry();
    r.remove(2);
    r.remove(3);
    assert.deepEqual(r.describe().map((d) => [d.capability, d.providers]), [
      ['echo.bytes@1.0', 1],
      ['echo.bytes@2.0', 1],
      ['embed.text@2.0', 1],
    ]);
    assert.deepEqual(new CapabilityRegistry().describe(), []);
  });
});
