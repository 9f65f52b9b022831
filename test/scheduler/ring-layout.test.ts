import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CANCEL_ENTRY_BYTES, CONTROL_BYTES, Slot, Word, computeLayout, defaultChannelConfig, inlineCapacity } from '../../src/scheduler/ring-layout.js';

describe('ring-layout', () => {
  it('puts each side-written counter on its own 64-byte line, inside the control block', () => {
    const counters = [Word.REQ_TAIL, Word.REQ_HEAD, Word.CMP_TAIL, Word.CMP_HEAD, Word.CANCEL_TAIL, Word.CANCEL_HEAD, Word.REQ_OVF_WRITE, Word.REQ_OVF_READ, Word.CMP_OVF_WRITE, Word.CMP_OVF_READ, Word.SHUTDOWN];
    const lines = counters.map((w) => Math.floor((w * 4) / 64));
    assert.equal(new Set(lines).size, counters.length);
    for (const w of Object.values(Word)) assert.ok(w * 4 + 4 <= CONTROL_BYTES, `word ${w}`);
  });

  it('lays out regions back to back, 64-byte aligned, without overlap', () => {
    for (const config of [defaultChannelConfig, { slots: 4, slotBytes: 128, overflowBytes: 4096 }, { slots: 2, slotBytes: 192, overflowBytes: 64 }]) {
      const l = computeLayout(config);
      assert.equal(l.cancelOffset, CONTROL_BYTES);
      assert.ok(l.requestOffset >= l.cancelOffset + config.slots * CANCEL_ENTRY_BYTES);
      assert.ok(l.requestOffset - (l.cancelOffset + config.slots * CANCEL_ENTRY_BYTES) < 64);
      assert.equal(l.completionOffset, l.requestOffset + config.slots * config.slotBytes);
      assert.equal(l.requestOverflowOffset, l.completionOffset + config.slots * config.slotBytes);
      assert.equal(l.completionOverflowOffset, l.requestOverflowOffset + config.overflowBytes);
      assert.equal(l.totalBytes, l.completionOverflowOffset + config.overflowBytes);
      for (const offset of [l.cancelOffset, l.requestOffset, l.completionOffset, l.requestOverflowOffset, l.completionOverflowOffset, l.totalBytes]) {
        assert.equal(offset % 64, 0, `offset ${offset}`);
      }
      assert.equal(l.slots, config.slots);
    }
  });

  it('inline capacity is the slot minus header and refs', () => {
    const l = computeLayout({ slots: 4, slotBytes: 256, overflowBytes: 4096 });
    assert.equal(Slot.HEADER_BYTES, 32);
    assert.equal(inlineCapacity(l, 0), 224);
    assert.equal(inlineCapacity(l, 3), 224 - 36);
    // MAX_REFS fits the smallest allowed slot (128 bytes) exactly.
    assert.equal(inlineCapacity(computeLayout({ slots: 4, slotBytes: 128, overflowBytes: 4096 }), Slot.MAX_REFS), 0);
  });

  it('keeps the slot header fields in distinct, aligned places', () => {
    const fields = [Slot.TICKET, Slot.KIND, Slot.PAYLOAD_BYTES, Slot.OVERFLOW_POS, Slot.FLAGS, Slot.REF_COUNT];
    assert.equal(new Set(fields).size, fields.length);
    for (const f of fields) assert.ok(f % 4 === 0 && f + 4 <= Slot.TIME);
    assert.equal(Slot.TIME % 8, 0);
    assert.ok(Slot.TIME + 8 <= Slot.HEADER_BYTES);
  });
});
