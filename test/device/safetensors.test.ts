import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  writeSafetensors,
  type SafetensorsTensorInput,
} from '../../src/device/safetensors-file.js';
import { ErrorCode, isCaphostError } from '../../src/errors.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'caphost-safetensors-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let seq = 0;
async function fileWith(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `f${seq++}.safetensors`);
  await writeFile(path, bytes);
  return path;
}

/** A file built by hand: u64 LE length, the header text (padded as given), then the buffer. */
function rawFile(headerText: string, buffer: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const header = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + header.byteLength + buffer.byteLength);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(header.byteLength), true);
  out.set(header, 8);
  out.set(buffer, 8 + header.byteLength);
  return out;
}

async function rejects(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const path = await fileWith(bytes);
  await assert.rejects(readSafetensors(path), (err: unknown) => {
    assert.ok(isCaphostError(err, ErrorCode.INVALID_ARGUMENT), `expected INVALID_ARGUMENT, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
    return true;
  });
}

test('round trip: several dtypes and shapes, scalar and zero-size tensors, metadata', async () => {
  const tensors: Record<string, SafetensorsTensorInput> = {
    'layer.0.weight': { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 4, 5, 6]) },
    scalar: { shape: [], data: Float64Array.from([Math.PI]) },
    empty: { shape: [0, 4], data: new Float32Array(0) },
    'empty.i64': { dtype: 'I64', shape: [3, 0], data: new BigInt64Array(0) },
    ids: { shape: [4], data: BigInt64Array.from([0n, -1n, 2n ** 62n, -(2n ** 63n)]) },
    i32: { shape: [1, 1, 3], data: Int32Array.from([-7, 0, 2 ** 31 - 1]) },
    half: { dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff]) },
    bf: { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x3f80]) },
    bytes: { shape: [5], data: Uint8Array.from([1, 2, 3, 4, 5]) },
    signed: { shape: [3], data: Int8Array.from([-128, 0, 127]) },
    mask: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
  };
  const metadata = { format: 'pt', note: 'héllo "quoted" ✓' };
  const path = join(dir, 'round.safetensors');
  await writeSafetensors(path, tensors, metadata);

  for (const into of ['heap', 'shared'] as const) {
    const file = await readSafetensors(path, { into });
    assert.deepEqual(file.metadata, metadata);
    assert.equal(file.buffer instanceof SharedArrayBuffer, into === 'shared');
    assert.deepEqual([...file.tensors.keys()].sort(), Object.keys(tensors).sort());
    for (const [name, input] of Object.entries(tensors)) {
      const t = file.tensors.get(name)!;
      assert.deepEqual(t.shape, input.shape, name);
      assert.equal(t.copied, false, `${name} is a view of the file buffer`);
      assert.equal(t.data.buffer, file.buffer, name);
      assert.equal(t.bytes.buffer, file.buffer, name);
      assert.equal(t.data.byteOffset % t.data.BYTES_PER_ELEMENT, 0, name);
      assert.deepEqual([...(t.data as Iterable<number | bigint>)], [...(input.data as unknown as Iterable<number | bigint>)], name);
      assert.equal(t.data.constructor, input.data.constructor, name);
    }
    assert.equal(file.tensors.get('layer.0.weight')!.dtype, 'F32');
    assert.equal(file.tensors.get('half')!.dtype, 'F16');
    assert.equal(file.tensors.get('bf')!.dtype, 'BF16');
    assert.equal(file.tensors.get('ids')!.dtype, 'I64');
    assert.equal(file.tensors.get('mask')!.dtype, 'BOOL');
    assert.equal(file.tensors.get('scalar')!.data.length, 1);
  }
});

test('writer layout: length is u64 LE, byte buffer starts at a multiple of 8, tensors packed and aligned', () => {
  const bytes = encodeSafetensors({
    a: { shape: [3], data: Uint8Array.from([1, 2, 3]) },
    b: { shape: [2], data: Float64Array.from([1, 2]) },
    c: { shape: [1], data: Float32Array.from([1]) },
  });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  // Largest elements first, no gaps: the reference reader requires full coverage.
  assert.deepEqual(header.b!.data_offsets, [0, 16]);
  assert.deepEqual(header.c!.data_offsets, [16, 20]);
  assert.deepEqual(header.a!.data_offsets, [20, 23]);
  assert.equal(bytes.byteLength, 8 + n + 23);
});

test('reads a file written by hand byte by byte per the spec', async () => {
  // Header: 2 tensors and metadata, padded with spaces; buffer has a gap (allowed here) and an
  // unaligned F32 tensor at offset 2, which must be copied.
  const header = '{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[2,10]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"s":{"dtype":"I16","shape":[],"data_offsets":[12,14]}}   ';
  const buffer = new Uint8Array(14);
  buffer.set([7, 9], 0); // b
  buffer.set([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0], 2); // w = [1, -2] as f32 little-endian
  buffer.set([0xfe, 0xff], 12); // s = -2 as i16 little-endian
  const bytes = rawFile(header, buffer);
  assert.deepEqual([...bytes.subarray(0, 8)], [header.length, 0, 0, 0, 0, 0, 0, 0]);
  const path = await fileWith(bytes);

  for (const into of ['heap', 'shared'] as const) {
    const file = await readSafetensors(path, { into });
    assert.deepEqual(file.metadata, { k: 'v' });
    const w = file.tensors.get('w')!;
    assert.equal(w.copied, true);
    assert.ok(w.data instanceof Float32Array);
    assert.deepEqual([...w.data], [1, -2]);
    assert.equal(w.data.buffer instanceof SharedArrayBuffer, into === 'shared');
    assert.deepEqual([...w.bytes], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    const b = file.tensors.get('b')!;
    assert.deepEqual([...b.data], [7, 9]);
    assert.equal(b.copied, false);
    const s = file.tensors.get('s')!;
    assert.deepEqual(s.shape, []);
    assert.ok(s.data instanceof Int16Array);
    assert.deepEqual([...s.data], [-2]);
  }
});

test('header parse accepts an empty tensor set and refuses non-string metadata', () => {
  const h = parseSafetensorsHeader(new TextEncoder().encode('{}'), 0);
  assert.equal(h.tensors.size, 0);
  assert.throws(() => parseSafetensorsHeader(new TextEncoder().encode('{"__metadata__":{"n":1}}'), 0), (err: unknown) =>
    isCaphostError(err, ErrorCode.INVALID_ARGUMENT) && /"n"/.test(err.message),
  );
});

test('rejects a file shorter than 8 bytes and a header length past the end', async () => {
  await rejects(new Uint8Array([1, 0, 0]), /shorter than the 8-byte header length/);
  const full = rawFile('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1));
  await rejects(full.subarray(0, 20), /runs past the end/); // truncated header
  await rejects(rawFile('{}', new Uint8Array(0), 1n << 40n), /exceeds the 100000000-byte limit/);
});

test('rejects bad JSON and a non-object header', async () => {
  await rejects(rawFile('{"t":{"dtype":"U8",'), /not valid JSON/);
  await rejects(rawFile('[1, 2]'), /does not start with/);
  await rejects(rawFile('{"t": 5}'), /tensor "t": entry is not an object/);
});

test('rejects an unknown dtype, naming the tensor', async () => {
  await rejects(rawFile('{"odd":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}', new Uint8Array(2)), /tensor "odd": unknown dtype "F12"/);
});

test('rejects a bad shape, naming the tensor', async () => {
  await rejects(rawFile('{"neg":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}'), /tensor "neg": shape \[-1\]/);
  await rejects(rawFile('{"frac":{"dtype":"U8","shape":[1.5],"data_offsets":[0,0]}}'), /tensor "frac": shape/);
});

test('rejects a size mismatch, naming the tensor', async () => {
  await rejects(
    rawFile('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', new Uint8Array(16)),
    /tensor "w": data_offsets \[0, 12\] span 12 bytes, but F32 \[2,2\] needs 16/,
  );
});

test('rejects offsets past the end of the buffer, naming the tensor', async () => {
  await rejects(rawFile('{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', new Uint8Array(8)), /tensor "w": data_offsets \[4, 12\] run past the end/);
  await rejects(rawFile('{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}', new Uint8Array(8)), /tensor "w": .*end before begin/);
});

test('rejects overlapping tensors, naming both', async () => {
  await rejects(
    rawFile(
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      new Uint8Array(8),
    ),
    /tensor "b": data_offsets \[4, 8\] overlap tensor "a"/,
  );
});

test('writer refuses data whose size does not match the shape', async () => {
  await assert.rejects(writeSafetensors(join(dir, 'bad.safetensors'), { w: { shape: [3], data: new Float32Array(2) } }), (err: unknown) =>
    isCaphostError(err, ErrorCode.INVALID_ARGUMENT) && /tensor "w"/.test(err.message),
  );
  assert.throws(() => encodeSafetensors({ h: { shape: [1], data: new Uint16Array(1) } }), /give a dtype/);
});

test('a tensor or metadata key named "__proto__" stays an ordinary name', async () => {
  const path = join(dir, 'proto.safetensors');
  await writeSafetensors(path, new Map([['__proto__', { shape: [1], data: Float32Array.from([2]) }]]), { ['__proto__']: 'x' } as Record<string, string>);
  const file = await readSafetensors(path);
  assert.deepEqual([...file.tensors.get('__proto__')!.data], [2]);
  assert.equal(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value, 'x');
});
