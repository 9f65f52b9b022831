import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControllerChannel } from '../../src/scheduler/controller-channel.js';
import { type ChannelConfig, Slot, computeLayout } from '../../src/scheduler/ring-layout.js';
import { COMPLETIONS, SlotRing } from '../../src/scheduler/slot-ring.js';

const CONFIG: ChannelConfig = { slots: 4, slotBytes: 128, overflowBytes: 4096 };

describe('ControllerChannel and a malformed completion', () => {
  it('delivers honest completions, then stops at a malformed one and reports it once', () => {
    const layout = computeLayout(CONFIG);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const seen: number[] = [];
    const corrupt: string[] = [];
    const channel = new ControllerChannel(
      sab,
      layout,
      (message, ch) => {
        seen.push(message.ticket);
        ch.release();
      },
      undefined,
      (reason) => corrupt.push(reason),
    );
    // The worker's side: a producer over the completion ring.
    const worker = new SlotRing(sab, layout, COMPLETIONS(layout));
    assert.equal(worker.write(1, 0, 0, new Uint8Array(4), null), true);
    assert.equal(worker.write(2, 0, 0, new Uint8Array(4), null), true);
    assert.equal(worker.write(3, 0, 0, new Uint8Array(4), null), true);
    // Slot 1 (ticket 2) claims more references than a slot can hold.
    new Uint32Array(sab)[(layout.completionOffset + CONFIG.slotBytes + Slot.REF_COUNT) >> 2] = 1000;
    assert.equal(channel.drain(), 1);
    assert.deepEqual(seen, [1]);
    assert.equal(channel.corrupt, true);
    assert.equal(corrupt.length, 1);
    assert.match(corrupt[0]!, /too many arena references/);
    assert.equal(channel.drain(), 0, 'nothing more is read');
    assert.equal(corrupt.length, 1, 'reported once');
    assert.deepEqual(seen, [1]);
  });
});
