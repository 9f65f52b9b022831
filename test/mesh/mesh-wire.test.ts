import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeCallRequest, encodeOutputReply, originField, replyTail, wire } from '../../src/mesh/mesh-wire.js';

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

  test('a call request written by hand is the bytes protobufjs writes for it', () => {
    const origin = originField('caller-ü');
    const cases: Array<[string, number, number, number]> = [
      ['echo.bytes@1', 64, 10_000, 1],
      ['echo.bytes@1.2', 0, 0, 0xffffffff],
      ['näme.x@3', 128, 127, 128],
      ['a@1', 16_384, 0x7fffffff, 300],
      ['b'.repeat(200) + '@1', 70_000, 1, 2_097_152],
    ];
    for (const [capability, length, deadline, id] of cases) {
      const input = new Uint8Array(length).map((_, i) => (i * 13 + 5) & 0xff);
      const mine = encodeCallRequest(capability, input, deadline, id, origin);
      const theirs = wire.callRequest.encode({ capability, input, deadline_ms: deadline, origin: 'caller-ü', call_id: id });
      assert.ok(Buffer.from(mine).equals(Buffer.from(theirs)), `${capability} ${length} ${deadline} ${id}`);
      const back = wire.callRequest.decode(mine);
      assert.equal(back.capability, capability);
      assert.equal(back.deadline_ms, deadline);
      assert.equal(back.call_id, id);
      assert.equal(back.origin, 'caller-ü');
      assert.ok(Buffer.from(back.input).equals(Buffer.from(input)));
    }
  });
});
