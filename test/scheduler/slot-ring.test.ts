import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import type { UnfinishedWriter } from '../../src/scheduler/payload.js';
import { type ChannelConfig, Slot, Word, computeLayout, inlineCapacity } from '../../src/scheduler/ring-layout.js';
import { type ArenaRef, COMPLETIONS, REQUESTS, SlotRing, newSlotMessage } from '../../src/scheduler/slot-ring.js';
import { mulberry32 } from '../support/prng.js';


interface Start {
  counters?: number;
  overflow?: number;
}

function channel(config: ChannelConfig, start: Start = {}) {
  const layout = computeLayout(config);
  const sab = new SharedArrayBuffer(layout.totalBytes);
  const i32 = new Int32Array(sab);
  if (start.counters !== undefined) {
    Atomics.store(i32, Word.REQ_TAIL, start.counters | 0);
    Atomics.store(i32, Word.REQ_HEAD, start.counters | 0);
  }
  if (start.overflow !== undefined) {
    Atomics.store(i32, Word.REQ_OVF_WRITE, start.overflow | 0);
    Atomics.store(i32, Word.REQ_OVF_READ, start.overflow | 0);
  }
  const dir = REQUESTS(layout);
  return { layout, sab, i32, producer: new SlotRing(sab, layout, dir), consumer: SlotRing.consumer(sab, layout, dir) };
}

/** Distinct, seq-dependent content so that any overwrite or misplaced read shows. */
function pattern(seq: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seq * 31 + i * 7 + (i >> 8)) & 255;
  return out;
}

function take(consumer: SlotRing) {
  assert.ok(consumer.hasMessage(), 'a message is waiting');
  const message = consumer.read(newSlotMessage())!;
  const payload = Uint8Array.from(message.bytes.subarray(message.start, message.start + message.length));
  const result = { ticket: message.ticket, kind: message.kind, time: message.time, payload, refs: message.refs, start: message.start };
  consumer.release();
  return result;
}

const SMALL: ChannelConfig = { slots: 4, slotBytes: 128, overflowBytes: 4096 };

describe('SlotRing', () => {
  it('delivers messages in FIFO order across many slot wraps', () => {
    const { producer, consumer } = channel(SMALL);
    let written = 0;
    let read = 0;
    const random = mulberry32(1);
    while (read < 200) {
      const canWrite = written - read < SMALL.slots && written < 200;
      if (canWrite && (random() < 0.6 || written === read)) {
        assert.equal(producer.write(written, written % 7, written * 1.5, pattern(written, written % 50), null), true);
        written++;
      } else {
        const m = take(consumer);
        assert.equal(m.ticket, read);
        assert.deepEqual(m.payload, pattern(read, read % 50));
        read++;
      }
    }
    assert.equal(consumer.hasMessage(), false);
    assert.equal(producer.position, 200);
    assert.equal(consumer.consumed, 200);
  });

  it('round-trips ticket, kind and time, including extreme values', () => {
    const { producer, consumer } = channel(SMALL);
    const cases: Array<[number, number, number]> = [
      [0, 0, 0],
      [0xffffffff, 0xffffffff, 1712345678901.5],
      [123, 4, -0.25],
      [7, 1, 2 ** 53 - 1],
    ];
    for (const [ticket, kind, time] of cases) {
      producer.write(ticket, kind, time, new Uint8Array(0), null);
      const m = take(consumer);
      assert.deepEqual([m.ticket, m.kind, m.time, m.payload.length, m.refs], [ticket, kind, time, 0, null]);
    }
  });

  it('has nothing to read before a write publishes', () => {
    const { producer, consumer } = channel(SMALL);
    assert.equal(consumer.hasMessage(), false);
    producer.write(1, 0, 0, new Uint8Array([1]), null);
    assert.equal(consumer.hasMessage(), true);
  });

  it('tells its producer how many published messages the consumer has not released', () => {
    const { producer, consumer } = channel(SMALL, { counters: 0xffff_fffe });
    assert.equal(producer.unread, 0);
    for (let i = 0; i < 3; i++) producer.write(i, 0, 0, new Uint8Array([i]), null);
    assert.equal(producer.unread, 3);
    take(consumer);
    assert.equal(producer.unread, 2);
    producer.write(3, 0, 0, new Uint8Array([3]), null, false);
    assert.equal(producer.unread, 3, 'a write counts once written, as the consumer will see it');
    take(consumer);
    take(consumer);
    producer.publish();
    take(consumer);
    assert.equal(producer.unread, 0);
  });

  it('keeps a payload up to the inline capacity in the slot, and a larger one in the overflow ring', () => {
    const { layout, producer, consumer } = channel(SMALL);
    for (const refs of [null, [{ field: 1, offset: 64, length: 8 }], [1, 2, 3].map((field) => ({ field, offset: field * 64, length: 4 }))]) {
      const cap = inlineCapacity(layout, refs?.length ?? 0);
      producer.write(1, 0, 0, pattern(1, cap), refs);
      const inline = take(consumer);
      assert.ok(inline.start >= layout.requestOffset && inline.start + cap <= layout.completionOffset, 'inline payload lies in the request slots');
      assert.deepEqual(inline.payload, pattern(1, cap));
      assert.deepEqual(inline.refs, refs);

      producer.write(2, 0, 0, pattern(2, cap + 1), refs);
      const over = take(consumer);
      assert.ok(over.start >= layout.requestOverflowOffset && over.start + cap + 1 <= layout.completionOverflowOffset, 'large payload lies in the request overflow ring');
      assert.deepEqual(over.payload, pattern(2, cap + 1));
      assert.deepEqual(over.refs, refs);
    }
  });

  it('write returns false until the consumer releases overflow space, then true', () => {
    const { i32, producer, consumer } = channel(SMALL);
    assert.equal(producer.write(1, 0, 0, pattern(1, 3000), null), true);
    const tail = Atomics.load(i32, Word.REQ_TAIL);
    // 2048 more bytes do not fit beside 3008 unreleased ones in 4096.
    assert.equal(producer.write(2, 0, 0, pattern(2, 2000), null), false);
    assert.equal(Atomics.load(i32, Word.REQ_TAIL), tail, 'a refused write publishes nothing');
    // Inline payloads still pass while overflow is full.
    assert.equal(producer.write(3, 0, 0, pattern(3, 10), null), true);
    // Reading alone does not free the space; release does.
    const message = consumer.read(newSlotMessage())!;
    assert.equal(message.ticket, 1);
    assert.equal(producer.write(2, 0, 0, pattern(2, 2000), null), false);
    consumer.release();
    assert.equal(producer.write(2, 0, 0, pattern(2, 2000), null), true);
    assert.deepEqual([take(consumer).ticket, take(consumer).ticket], [3, 2]);
  });

  it('a payload the overflow ring could never hold is refused and fits() says so', () => {
    const { layout, producer } = channel(SMALL);
    assert.equal(producer.fits(inlineCapacity(layout, 0), 0), true);
    assert.equal(producer.fits(4096, 0), true);
    assert.equal(producer.fits(4033, 0), true);
    assert.equal(producer.fits(4097, 0), false);
    assert.equal(producer.fits(inlineCapacity(layout, 2), 2), true);
    assert.equal(producer.write(1, 0, 0, new Uint8Array(4097), null), false);
  });

  it('wraps the overflow ring correctly over many random sizes (seeded)', () => {
    for (const seed of [7, 8, 9]) {
      const random = mulberry32(seed);
      const config: ChannelConfig = { slots: 8, slotBytes: 128, overflowBytes: 4096 };
      const { producer, consumer } = channel(config);
      const pending: Array<{ seq: number; length: number }> = [];
      let seq = 0;
      let refused = 0;
      let verified = 0;
      while (verified < 3000) {
        const length = random() < 0.3 ? Math.floor(random() * 96) : 97 + Math.floor(random() * 1500);
        const full = pending.length === config.slots;
        if (!full && producer.write(seq, seq & 0xff, seq, pattern(seq, length), null)) {
          pending.push({ seq, length });
          seq++;
        } else {
          if (!full) refused++;
          // Consume one (sometimes a few) to make room, checking content survived later writes.
          const n = 1 + Math.floor(random() * Math.min(3, pending.length));
          for (let i = 0; i < n; i++) {
            const expected = pending.shift()!;
            const m = take(consumer);
            assert.equal(m.ticket, expected.seq, `seed ${seed}`);
            assert.equal(m.kind, expected.seq & 0xff);
            assert.deepEqual(m.payload, pattern(expected.seq, expected.length), `seed ${seed} seq ${expected.seq}`);
            verified++;
          }
        }
      }
      assert.ok(refused > 50, `backpressure was exercised (${refused})`);
    }
  });

  it('round-trips arena refs, inline and in overflow', () => {
    const { producer, consumer } = channel({ slots: 4, slotBytes: 256, overflowBytes: 4096 });
    const refs: ArenaRef[] = Array.from({ length: Slot.MAX_REFS }, (_, i) => ({ field: i + 1, offset: 0xfffff000 + i * 64, length: 0x7fffffff - i }));
    for (const length of [0, 5, 2000]) {
      producer.write(9, 3, 1, pattern(length, length), refs);
      const m = take(consumer);
      assert.deepEqual(m.refs, refs);
      assert.deepEqual(m.payload, pattern(length, length));
    }
    producer.write(10, 3, 1, pattern(0, 4), null);
    assert.equal(take(consumer).refs, null, 'no refs after a message with refs');
  });

  it('carries an unfinished protobufjs Writer inline and in overflow', () => {
    const type = protobuf.parse('syntax = "proto3"; message M { bytes b = 1; string s = 2; }').root.lookupType('M');
    const { producer, consumer } = channel(SMALL);
    for (const size of [10, 3000]) {
      const message = { b: pattern(size, size), s: 'x'.repeat(size % 97) };
      producer.write(1, 0, 0, type.encode(message) as unknown as UnfinishedWriter, null);
      const m = take(consumer);
      assert.deepEqual(Buffer.from(m.payload), Buffer.from(type.encode(message).finish()));
    }
  });

  for (const [label, counters, overflow] of [
    ['unaligned', 0xfffffff0, 0xfffffff0],
    ['64-aligned', 0xfffffffd, 0xfffff000],
  ] as const) {
    it(`keeps working when its u32 counters wrap past 2^32 (${label})`, () => {
      const config: ChannelConfig = { slots: 4, slotBytes: 128, overflowBytes: 4096 };
      const { i32, producer, consumer } = channel(config, { counters, overflow });
      assert.equal(producer.position, counters);
      assert.equal(consumer.consumed, counters);
      const random = mulberry32(counters);
      const pending: Array<{ seq: number; length: number }> = [];
      let seq = 0;
      while (seq < 400) {
        const length = random() < 0.5 ? Math.floor(random() * 90) : 100 + Math.floor(random() * 1800);
        if (pending.length < config.slots && producer.write(seq, 0, 0, pattern(seq, length), null)) {
          pending.push({ seq, length });
          seq++;
        } else {
          const expected = pending.shift()!;
          const m = take(consumer);
          assert.equal(m.ticket, expected.seq);
          assert.deepEqual(m.payload, pattern(expected.seq, expected.length), `seq ${expected.seq}`);
        }
      }
      while (pending.length > 0) {
        const expected = pending.shift()!;
        assert.deepEqual(take(consumer).payload, pattern(expected.seq, expected.length));
      }
      assert.equal(consumer.hasMessage(), false);
      // The counters did wrap.
      assert.equal(producer.position, (counters + 400) >>> 0);
      assert.ok(producer.position < 1000);
      assert.ok((Atomics.load(i32, Word.REQ_OVF_WRITE) >>> 0) < 0x10000000, 'overflow write counter wrapped');
      assert.equal(Atomics.load(i32, Word.REQ_OVF_READ), Atomics.load(i32, Word.REQ_OVF_WRITE));
    });
  }

  it('keeps the two directions of a channel independent', () => {
    const layout = computeLayout(SMALL);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const reqP = new SlotRing(sab, layout, REQUESTS(layout));
    const reqC = SlotRing.consumer(sab, layout, REQUESTS(layout));
    const cmpP = new SlotRing(sab, layout, COMPLETIONS(layout));
    const cmpC = SlotRing.consumer(sab, layout, COMPLETIONS(layout));
    reqP.write(1, 11, 0, pattern(1, 2000), null);
    cmpP.write(2, 22, 0, pattern(2, 2000), null);
    reqP.write(3, 33, 0, pattern(3, 20), null);
    const c = take(cmpC);
    assert.deepEqual([c.ticket, c.kind], [2, 22]);
    assert.deepEqual(c.payload, pattern(2, 2000));
    assert.equal(cmpC.hasMessage(), false);
    assert.deepEqual(take(reqC).payload, pattern(1, 2000));
    assert.deepEqual(take(reqC).payload, pattern(3, 20));
  });

  it('a new consumer or producer view resumes from the published counters', () => {
    const layout = computeLayout(SMALL);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const p1 = new SlotRing(sab, layout, REQUESTS(layout));
    const c1 = SlotRing.consumer(sab, layout, REQUESTS(layout));
    p1.write(1, 0, 0, pattern(1, 500), null);
    p1.write(2, 0, 0, pattern(2, 500), null);
    take(c1);
    const c2 = SlotRing.consumer(sab, layout, REQUESTS(layout));
    const p2 = new SlotRing(sab, layout, REQUESTS(layout));
    p2.write(3, 0, 0, pattern(3, 600), null);
    assert.equal(take(c2).ticket, 2);
    const m = take(c2);
    assert.equal(m.ticket, 3);
    assert.deepEqual(m.payload, pattern(3, 600));
  });

  it(
    'never writes refs past its own slot into the next one',
    () => {
      const config: ChannelConfig = { slots: 2, slotBytes: 128, overflowBytes: 4096 };
      const { producer, consumer } = channel(config);
      producer.write(100, 1, 0, pattern(100, 8), null);
      producer.write(101, 2, 0, pattern(101, 8), null);
      assert.equal(take(consumer).ticket, 100);
      // Two in flight (<= slots): 101 waits in slot 1 while slot 0 is reused with 9 refs (32 + 9 * 12 = 140 > 128).
      const refs = Array.from({ length: Slot.MAX_REFS + 1 }, (_, i) => ({ field: 1000 + i, offset: 64 * i, length: 8 }));
      try {
        producer.write(102, 3, 0, pattern(102, 4), refs);
      } catch {
        // Refusing the message is an acceptable fix.
      }
      const waiting = take(consumer);
      assert.deepEqual([waiting.ticket, waiting.kind], [101, 2]);
      assert.deepEqual(waiting.payload, pattern(101, 8));
    },
  );
});

describe('SlotRing.read validates what the producer wrote', () => {
  /** Writes one honest message, then overwrites header words of its slot (byte offsets in Slot). */
  function corrupted(words: Partial<Record<'PAYLOAD_BYTES' | 'OVERFLOW_POS' | 'FLAGS' | 'REF_COUNT', number>>, length = 10) {
    const ring = channel(SMALL);
    assert.equal(ring.producer.write(7, 1, 0, pattern(7, length), null), true);
    const base = ring.layout.requestOffset; // slot 0
    const u32 = new Uint32Array(ring.sab);
    for (const [name, value] of Object.entries(words)) u32[(base + Slot[name as keyof typeof words]) >> 2] = value >>> 0;
    return ring;
  }

  function assertCorrupt(consumer: SlotRing, pattern: RegExp): void {
    const before = consumer.consumed;
    assert.ok(consumer.hasMessage());
    assert.equal(consumer.read(newSlotMessage()), null);
    assert.match(consumer.corruption, pattern);
    assert.equal(consumer.consumed, before, 'nothing is consumed');
    assert.equal(consumer.read(newSlotMessage()), null, 'and it stays corrupt');
  }

  it('reports too many arena references', () => {
    assertCorrupt(corrupted({ REF_COUNT: Slot.MAX_REFS + 1 }).consumer, /too many arena references/);
    assertCorrupt(corrupted({ REF_COUNT: 0xffffffff }).consumer, /too many arena references/);
  });

  it('reports an inline payload longer than its slot', () => {
    const capacity = inlineCapacity(computeLayout(SMALL), 0);
    assertCorrupt(corrupted({ PAYLOAD_BYTES: capacity + 1 }).consumer, /inline payload/);
    assertCorrupt(corrupted({ PAYLOAD_BYTES: 0xffffffff }).consumer, /inline payload/);
    // Refs shrink the room: 8 refs leave 128 - 32 - 96 = 0 bytes.
    assertCorrupt(corrupted({ REF_COUNT: Slot.MAX_REFS, PAYLOAD_BYTES: 1 }).consumer, /inline payload/);
  });

  it('reports overflow records that are too long, straddle the end, or lie outside the held span', () => {
    const big = 1000; // goes to overflow at position 0
    assertCorrupt(corrupted({ PAYLOAD_BYTES: SMALL.overflowBytes + 1 }, big).consumer, /longer than the overflow ring/);
    assertCorrupt(corrupted({ PAYLOAD_BYTES: 0xffffffff }, big).consumer, /longer than the overflow ring/);
    assertCorrupt(corrupted({ OVERFLOW_POS: SMALL.overflowBytes - 64 }, big).consumer, /runs past the end/);
    assertCorrupt(corrupted({ OVERFLOW_POS: 0xffffffc0 }, big).consumer, /runs past the end|outside the span/);
    // Aligned and inside the ring, but a whole ring ahead of what the consumer released.
    assertCorrupt(corrupted({ OVERFLOW_POS: SMALL.overflowBytes }, big).consumer, /outside the span/);
    // An inline message flagged as overflow with a wild position.
    assertCorrupt(corrupted({ FLAGS: 1, OVERFLOW_POS: 3 * SMALL.overflowBytes + 8, PAYLOAD_BYTES: 10 }).consumer, /outside the span/);
  });

  it('reports a tail counter that ran past the ring', () => {
    const { i32, consumer } = corrupted({});
    Atomics.store(i32, Word.REQ_TAIL, SMALL.slots + 1);
    assertCorrupt(consumer, /tail counter/);
    Atomics.store(i32, Word.REQ_TAIL, -1);
    assertCorrupt(consumer, /tail counter/);
  });

  it('accepts honest messages at every limit', () => {
    const layout = computeLayout(SMALL);
    const { producer, consumer } = channel(SMALL, { counters: 0xfffffffe, overflow: 0xffffffff - 4095 });
    const refs = Array.from({ length: Slot.MAX_REFS }, (_, i) => ({ field: i + 1, offset: i, length: 1 }));
    assert.equal(producer.write(1, 0, 0, pattern(1, inlineCapacity(layout, 0)), null), true);
    assert.equal(producer.write(2, 0, 0, pattern(2, 20), refs), true); // 8 refs: overflow
    assert.equal(producer.write(3, 0, 0, pattern(3, SMALL.overflowBytes - 1024 - 64), null), true);
    assert.deepEqual(take(consumer).payload, pattern(1, inlineCapacity(layout, 0)));
    const withRefs = take(consumer);
    assert.equal(withRefs.refs?.length, Slot.MAX_REFS);
    assert.deepEqual(withRefs.payload, pattern(2, 20));
    assert.deepEqual(take(consumer).payload, pattern(3, SMALL.overflowBytes - 1024 - 64));
    for (let i = 0; i < 40; i++) {
      assert.equal(producer.write(i, 0, 0, pattern(i, 300 + i * 40), null), true);
      assert.deepEqual(take(consumer).payload, pattern(i, 300 + i * 40));
    }
  });
});
