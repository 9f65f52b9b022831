import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeOutputReply, replyTail, wire } from '../../src/mesh/mesh-wire.js';

describe('mesh wire', () => {
  test('an output reply written by hand reads back as the CallReply protobufjs writes', () => {
    const tail = replyTail('node-ä');
    // Lengths around each varint boundary of the output's length prefix.
    for (const length of [0, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_152]) {
      const output = new Uint8Array(length).map((_, i) => (i * 31 + 7) & 0xff);
      const bytes = encodeOutputReply(output, tail);
      const reply = wire.callReply.decode(bytes);
      assert.equal(reply.node, 'node-ä', `length ${length}`);
      assert.equal(reply.output?.length ?? 0, length);
      assert.ok(Buffer.from(reply.output ?? []).equals(Buffer.from(output)), `length ${length}`);
      assert.ok(reply.error == null || reply.error.code === '');
      // The same size as protobufjs's own encoding: nothing added, nothing left out.
      assert.equal(bytes.length, wire.callReply.encode({ output, node: 'node-ä' }).length, `length ${length}`);
    }
  });
});
