import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { type UnfinishedWriter, copyPayload, payloadLength, settlePayload } from '../../src/scheduler/payload.js';

const root = protobuf.parse(`
syntax = "proto3";
message Inner { string s = 1; repeated int32 xs = 2; }
message Msg {
  string short = 1;
  string long = 2;
  bytes data = 3;
  double d = 4;
  float f = 5;
  sint32 z = 6;
  uint32 u = 7;
  fixed32 fx = 8;
  bool b = 9;
  Inner inner = 10;
  repeated Inner list = 11;
  repeated float packed = 12;
  uint64 big = 13;
}
`).root;
const Msg = root.lookupType('Msg');

const sample = {
  short: 'hi ✓',
  long: 'a string long enough to take the utf8Write path of BufferWriter — ünïcödé',
  data: Buffer.from(Array.from({ length: 300 }, (_, i) => i & 255)),
  d: Math.PI,
  f: 1.5,
  z: -123456,
  u: 4000000000,
  fx: 0xdeadbeef,
  b: true,
  inner: { s: 'nested', xs: [1, -1, 300] },
  list: [{ s: 'a' }, { s: 'b', xs: [5] }],
  packed: [0.5, 1.5, 2.5],
  big: 2 ** 40 + 3,
};

/** Copies `writer` at `pos` into a junk-filled Buffer and returns the written range. */
function copied(writer: UnfinishedWriter, pos: number): Buffer {
  const buf = Buffer.alloc(pos + writer.len + 17, 0xcc);
  copyPayload(writer, buf, pos);
  assert.ok(buf.subarray(0, pos).every((b) => b === 0xcc), 'bytes before pos untouched');
  assert.ok(buf.subarray(pos + writer.len).every((b) => b === 0xcc), 'bytes after the payload untouched');
  return buf.subarray(pos, pos + writer.len);
}

describe('payload', () => {
  it('pins protobufjs Writer op-list shape: copyPayload of an unfinished Writer equals writer.finish()', () => {
    const writer = Msg.encode(sample) as unknown as UnfinishedWriter;
    assert.equal(typeof writer.len, 'number');
    assert.equal(typeof writer.head.next?.fn, 'function');
    const out = Buffer.from(copied(writer, 19));
    const finished = writer.finish();
    assert.equal(out.length, finished.length);
    assert.deepEqual(out, Buffer.from(finished));
    // And the bytes are the message.
    const back = Msg.toObject(Msg.decode(out), { longs: Number }) as Record<string, unknown>;
    assert.equal(back['long'], sample.long);
    assert.equal(back['big'], sample.big);
  });

  it('pins the shape for a hand-driven Writer with fork/ldelim, both Writer kinds', () => {
    for (const make of [() => protobuf.Writer.create(), () => new protobuf.Writer()]) {
      const build = () =>
        make()
          .uint32(10).string('x'.repeat(50))
          .uint32(18).fork().uint32(8).int32(-5).uint32(18).string('deep').ldelim()
          .uint32(26).bytes(new Uint8Array([9, 8, 7]))
          .fixed64(123456789).sfixed32(-2).double(-0.25).float(3).bool(false).sint64(-77);
      const expected = Buffer.from(build().finish());
      assert.deepEqual(Buffer.from(copied(build() as unknown as UnfinishedWriter, 5)), expected);
    }
  });

  it('an empty Writer copies nothing', () => {
    const writer = Msg.encode({}) as unknown as UnfinishedWriter;
    assert.equal(writer.len, 0);
    assert.equal(copied(writer, 3).length, 0);
  });

  it('copies finished bytes at pos', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const buf = Buffer.alloc(8);
    copyPayload(bytes, buf, 4);
    assert.deepEqual([...buf], [0, 0, 0, 0, 1, 2, 3, 0]);
  });

  it('payloadLength reads both kinds', () => {
    const writer = Msg.encode(sample) as unknown as UnfinishedWriter;
    const len = writer.len;
    assert.equal(payloadLength(writer), len);
    assert.equal(payloadLength(writer.finish()), len);
    assert.equal(payloadLength(new Uint8Array(7)), 7);
  });

  it('settlePayload snapshots a Writer and passes bytes through', () => {
    const bytes = new Uint8Array([4, 5]);
    assert.equal(settlePayload(bytes), bytes);
    const data = Buffer.from('mutable');
    const writer = Msg.encode({ data }) as unknown as UnfinishedWriter;
    const settled = settlePayload(writer);
    data.fill(0);
    assert.equal(Buffer.from((Msg.decode(settled) as unknown as { data: Uint8Array }).data).toString(), 'mutable');
  });
});
