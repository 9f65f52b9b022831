import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CaphostError, ErrorCode } from '../../src/errors.js';
import { type MessageCodec, compileSchema } from '../../src/router/capability-schema.js';
import type { ArenaRef } from '../../src/scheduler/slot-ring.js';

const PROTO = `
syntax = "proto3";
package t;
message Inner { int32 a = 1; string s = 2; }
message Req {
  bytes data = 1;
  string name = 2;
  int32 n = 3;
  Inner inner = 4;
  repeated float values = 5;
  bytes extra = 6;
  bool flag = 7;
  repeated bytes chunks = 8;
}
message Res { bytes out = 1; }
`;

const schema = compileSchema('t.cap@1.0', { proto: PROTO, input: 't.Req', output: 't.Res' });
const req: MessageCodec = schema.input;

function mismatch(fn: () => unknown, field: string | undefined, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CaphostError, String(error));
    assert.equal(error.code, ErrorCode.SCHEMA_MISMATCH);
    assert.match(error.message, message);
    assert.equal(error.details?.['field'], field);
    return true;
  });
}

/** Encodes, finishes, and places the bytes at `offset` in a larger buffer filled with junk. */
function encodeAt(codec: MessageCodec, message: object, offset: number, arena: ArrayBufferLike | null = null) {
  const { bytes, refs } = codec.encode(message, arena);
  const finished = bytes.finish();
  const buf = Buffer.alloc(offset + finished.length + 37, 0xa5);
  buf.set(finished, offset);
  return { buf, start: offset, length: finished.length, refs };
}

describe('compileSchema', () => {
  it('compiles and exposes both message types', () => {
    assert.equal(schema.input.type.fullName, '.t.Req');
    assert.equal(schema.output.type.fullName, '.t.Res');
  });

  it('throws INVALID_WORKER when the proto does not parse', () => {
    assert.throws(
      () => compileSchema('bad.cap@1.0', { proto: 'message { nope', input: 'A', output: 'B' }),
      (error: unknown) => {
        assert.ok(error instanceof CaphostError);
        assert.equal(error.code, ErrorCode.INVALID_WORKER);
        assert.match(error.message, /^capability bad\.cap@1\.0: its proto does not compile: /);
        assert.deepEqual(error.details, { capability: 'bad.cap@1.0' });
        assert.ok(error.cause instanceof Error);
        return true;
      },
    );
  });

  it('throws INVALID_WORKER when a field type does not resolve', () => {
    assert.throws(() => compileSchema('bad.cap@1.0', { proto: 'syntax = "proto3"; message A { Missing m = 1; }', input: 'A', output: 'A' }), {
      code: ErrorCode.INVALID_WORKER,
      message: /its proto does not compile/,
    });
  });

  it('throws INVALID_WORKER naming an unknown input message', () => {
    assert.throws(
      () => compileSchema('c@1.0', { proto: PROTO, input: 't.Nope', output: 't.Res' }),
      (error: unknown) => {
        assert.ok(error instanceof CaphostError);
        assert.equal(error.code, ErrorCode.INVALID_WORKER);
        assert.equal(error.message, 'capability c@1.0: schema.input names message "t.Nope", which its proto does not define');
        assert.deepEqual(error.details, { capability: 'c@1.0', role: 'input', message: 't.Nope' });
        return true;
      },
    );
  });

  it('throws INVALID_WORKER naming an unknown output message', () => {
    assert.throws(() => compileSchema('c@1.0', { proto: PROTO, input: 't.Req', output: 't.Missing' }), {
      code: ErrorCode.INVALID_WORKER,
      message: 'capability c@1.0: schema.output names message "t.Missing", which its proto does not define',
    });
  });

  it('resolves an unqualified message name inside the package (protobufjs deep lookup)', () => {
    assert.equal(compileSchema('c@1.0', { proto: PROTO, input: 'Req', output: 'Res' }).output.type.fullName, '.t.Res');
  });

  it('throws INVALID_WORKER when a message name refers to a non-message (an enum)', () => {
    assert.throws(() => compileSchema('c@1.0', { proto: 'syntax = "proto3"; enum E { Z = 0; } message M {}', input: 'E', output: 'M' }), {
      code: ErrorCode.INVALID_WORKER,
    });
  });
});

describe('MessageCodec.check', () => {
  it('accepts a valid message, empty objects, and undefined unknown keys', () => {
    req.check({ data: new Uint8Array(3), name: 'x', n: 4, inner: { a: 1, s: 'q' }, values: [1.5], flag: true, chunks: [Buffer.from('a')] });
    req.check({});
    req.check({ zzz: undefined });
    req.check(req.type.create({ n: 1 }));
  });

  it('rejects non-objects without naming a field', () => {
    for (const value of [null, 5, 'str', [1, 2], undefined]) {
      mismatch(() => req.check(value), undefined, /^t\.cap@1\.0 input must be an object with the fields of Req$/);
    }
  });

  it('names a field of the wrong type', () => {
    mismatch(() => req.check({ n: 'seven' }), 'n', /^t\.cap@1\.0 input field "n": integer expected$/);
    mismatch(() => req.check({ name: 5 }), 'name', /field "name": string expected/);
    mismatch(() => req.check({ data: 5 }), 'data', /field "data": buffer expected/);
    mismatch(() => req.check({ values: 3 }), 'values', /field "values": array expected/);
    mismatch(() => req.check({ values: ['x'] }), 'values', /field "values": number\[\] expected/);
  });

  it('names an unknown field', () => {
    mismatch(() => req.check({ n: 1, nope: 2 }), 'nope', /^t\.cap@1\.0 input has field "nope", which Req does not define$/);
  });

  it('names a nested field by its path', () => {
    mismatch(() => req.check({ inner: { a: 'x' } }), 'inner.a', /field "inner\.a": integer expected/);
    mismatch(() => req.check({ inner: { s: 1 } }), 'inner.s', /field "inner\.s": string expected/);
  });

  it('names a message-typed field that is not an object', () => {
    mismatch(() => req.check({ inner: 5 }), 'inner', /field "inner"/);
  });

  it('is reported by the output codec with its own label', () => {
    mismatch(() => schema.output.check({ out: 1 }), 'out', /^t\.cap@1\.0 output field "out": buffer expected$/);
  });
});

describe('MessageCodec.encode / decode', () => {
  it('round-trips through a Buffer at an offset', () => {
    const message = { data: Buffer.from([1, 2, 3, 250]), name: 'héllo', n: -12345, inner: { a: 7, s: 'nested' }, values: [1.5, -2.25], flag: true, chunks: [Buffer.from('ab'), Buffer.from('c')] };
    const { buf, start, length, refs } = encodeAt(req, message, 101);
    assert.equal(refs, null);
    const out = req.decode(buf, start, length, null, null);
    assert.deepEqual(Buffer.from(out['data'] as Uint8Array), message.data);
    assert.equal(out['name'], 'héllo');
    assert.equal(out['n'], -12345);
    assert.deepEqual({ ...(out['inner'] as object) }, { a: 7, s: 'nested' });
    assert.deepEqual(out['values'], [1.5, -2.25]);
    assert.equal(out['flag'], true);
    assert.deepEqual((out['chunks'] as Uint8Array[]).map((c) => Buffer.from(c).toString()), ['ab', 'c']);
  });

  it('reads exactly `length` bytes from `start`, not beyond', () => {
    const a = req.encode({ n: 1 }, null).bytes.finish();
    const b = req.encode({ n: 2, name: 'second' }, null).bytes.finish();
    const buf = Buffer.concat([Buffer.alloc(5), a, b]);
    assert.deepEqual({ n: req.decode(buf, 5, a.length, null, null)['n'], name: req.decode(buf, 5, a.length, null, null)['name'] }, { n: 1, name: '' });
    assert.equal(req.decode(buf, 5 + a.length, b.length, null, null)['name'], 'second');
  });

  it('decodes bytes fields as copies, small and large', () => {
    for (const size of [1, 40, 96, 97, 1000]) {
      const data = Buffer.alloc(size, 0x11);
      const { buf, start, length } = encodeAt(req, { data, chunks: [Buffer.alloc(size, 0x22)] }, 13);
      const out = req.decode(buf, start, length, null, null);
      buf.fill(0xee);
      assert.deepEqual(Buffer.from(out['data'] as Uint8Array), Buffer.alloc(size, 0x11), `size ${size}`);
      assert.deepEqual(Buffer.from((out['chunks'] as Uint8Array[])[0]!), Buffer.alloc(size, 0x22), `chunks size ${size}`);
      assert.notEqual((out['data'] as Uint8Array).buffer, buf.buffer);
    }
  });

  it('rejects a length that runs past the end of the message', () => {
    const { buf, start, length } = encodeAt(req, { data: Buffer.alloc(50, 1) }, 0);
    assert.throws(() => req.decode(buf, start, length - 10, null, null), RangeError);
  });

  it('encodes a Float32Array in a bytes field as its bytes', () => {
    const floats = new Float32Array([1.5, -2, 3.25, Math.PI]);
    const { buf, start, length } = encodeAt(req, { data: floats }, 3);
    assert.equal(length, 2 + 16);
    const out = req.decode(buf, start, length, null, null)['data'] as Uint8Array;
    assert.equal(out.byteLength, 16);
    assert.deepEqual(new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + 16)), floats);
  });

  it('encodes a typed array that is a window of a larger buffer as only its window', () => {
    const backing = new Float64Array([9, 1, 2, 9]);
    const window = new Float64Array(backing.buffer, 8, 2);
    const { buf, start, length } = encodeAt(req, { data: window }, 0);
    const out = req.decode(buf, start, length, null, null)['data'] as Uint8Array;
    assert.deepEqual(Buffer.from(out), Buffer.from(backing.buffer, 8, 16));
  });

  it('does not modify the caller\'s message', () => {
    const arena = new SharedArrayBuffer(256);
    const view = new Uint8Array(arena, 64, 8);
    const floats = new Float32Array(2);
    const message = { data: view, extra: floats, n: 3 };
    req.encode(message, arena);
    assert.equal(message.data, view);
    assert.equal(message.extra, floats);
  });

  it('turns arena views into refs (not encoded) and decodes them as views of the same memory', () => {
    const arena = new SharedArrayBuffer(1024);
    const data = new Uint8Array(arena, 128, 40);
    const extra = new Float32Array(arena, 512, 4);
    data.fill(7);
    extra.set([1, 2, 3, 4]);
    const { buf, start, length, refs } = encodeAt(req, { data, extra, n: 9 }, 21, arena);
    assert.deepEqual(refs, [
      { field: 1, offset: 128, length: 40 },
      { field: 6, offset: 512, length: 16 },
    ]);
    // Only the n field is in the protobuf bytes.
    assert.equal(length, 2);
    const out = req.decode(buf, start, length, refs, arena);
    assert.equal(out['n'], 9);
    const d = out['data'] as Uint8Array;
    const e = out['extra'] as Uint8Array;
    assert.equal(d.buffer, arena);
    assert.equal(d.byteOffset, 128);
    assert.equal(d.byteLength, 40);
    assert.equal(e.buffer, arena);
    assert.equal(e.byteOffset, 512);
    assert.equal(e.byteLength, 16);
    // Same memory: a write through the original shows in the decoded view and back.
    data[0] = 99;
    assert.equal(d[0], 99);
    d[1] = 42;
    assert.equal(data[1], 42);
    assert.deepEqual(new Float32Array(arena, e.byteOffset, 4), new Float32Array([1, 2, 3, 4]));
  });

  it('encodes views of another buffer inline even when an arena is given', () => {
    const arena = new SharedArrayBuffer(256);
    const { refs, bytes } = req.encode({ data: new Uint8Array([1, 2, 3]), extra: new Uint8Array(new SharedArrayBuffer(4)) }, arena);
    assert.equal(refs, null);
    assert.equal(bytes.finish().length, 2 + 3 + 2 + 4);
  });

  it('rejects a ref outside the arena with SCHEMA_MISMATCH', () => {
    const arena = new SharedArrayBuffer(256);
    const refs: ArenaRef[] = [{ field: 1, offset: 200, length: 57 }];
    assert.throws(() => req.decode(Buffer.alloc(0), 0, 0, refs, arena), {
      code: ErrorCode.SCHEMA_MISMATCH,
      message: 't.cap@1.0 input has an arena reference that does not fit its schema',
    });
    // Exactly to the end is fine.
    const ok = req.decode(Buffer.alloc(0), 0, 0, [{ field: 1, offset: 200, length: 56 }], arena);
    assert.equal((ok['data'] as Uint8Array).byteLength, 56);
  });

  it('rejects a ref for an unknown or non-bytes field with SCHEMA_MISMATCH', () => {
    const arena = new SharedArrayBuffer(256);
    for (const field of [99, 2, 3, 8]) {
      assert.throws(() => req.decode(Buffer.alloc(0), 0, 0, [{ field, offset: 0, length: 8 }], arena), { code: ErrorCode.SCHEMA_MISMATCH }, `field ${field}`);
    }
  });

  it('rejects refs when no arena is mapped', () => {
    assert.throws(() => req.decode(Buffer.alloc(0), 0, 0, [{ field: 1, offset: 0, length: 8 }], null), { code: ErrorCode.NATIVE_ERROR });
  });
});
