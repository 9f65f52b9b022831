import { type Payload, copyPayload, payloadLength } from './payload.js';
import { type ChannelLayout, Slot, SlotFlag, Word, inlineCapacity, payloadFits } from './ring-layout.js';

/** A zero-copy reference to bytes of the shared arena, carried beside a message. */
export interface ArenaRef {
  /** Protobuf field number the bytes belong to. */
  readonly field: number;
  readonly offset: number;
  readonly length: number;
}

/**
 * One message read from a ring. Its payload stays in shared memory (`bytes`, from `start`, for
 * `length` bytes) until the consumer calls `release()`: decoding reads it in place, because
 * allocating a typed array above 64 bytes costs V8 a microsecond.
 */
export interface SlotMessage {
  ticket: number;
  kind: number;
  time: number;
  /** The whole channel as a Buffer; the payload is a range of it. */
  bytes: Buffer;
  start: number;
  length: number;
  refs: ArenaRef[] | null;
  /** Requests: the size of the batch this request leads (0 when it leads none). */
  batch: number;
}

interface Direction {
  readonly slotsOffset: number;
  readonly overflowOffset: number;
  readonly tail: number;
  readonly head: number;
  readonly overflowWrite: number;
  readonly overflowRead: number;
}

export const REQUESTS = (layout: ChannelLayout): Direction => ({
  slotsOffset: layout.requestOffset,
  overflowOffset: layout.requestOverflowOffset,
  tail: Word.REQ_TAIL,
  head: Word.REQ_HEAD,
  overflowWrite: Word.REQ_OVF_WRITE,
  overflowRead: Word.REQ_OVF_READ,
});

export const COMPLETIONS = (layout: ChannelLayout): Direction => ({
  slotsOffset: layout.completionOffset,
  overflowOffset: layout.completionOverflowOffset,
  tail: Word.CMP_TAIL,
  head: Word.CMP_HEAD,
  overflowWrite: Word.CMP_OVF_WRITE,
  overflowRead: Word.CMP_OVF_READ,
});

const EMPTY = Buffer.alloc(0);

/**
 * One direction of a channel: a single-producer/single-consumer ring of fixed slots plus its
 * overflow byte ring. The producer and the consumer each hold their own instance over the same
 * memory and keep their own counter locally; only publishing goes through Atomics, whose
 * sequential consistency orders the plain slot writes before the counter that exposes them.
 */
export class SlotRing {
  readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  /** The same bytes as a Buffer, which protobufjs's write operations expect. */
  private readonly buf: Buffer;
  private readonly f64: Float64Array;
  private readonly mask: number;
  private readonly slotBytes: number;
  private readonly overflowBytes: number;
  /** Producer: next tail to publish. Consumer: next slot to read. */
  private cursor: number;
  private overflowCursor: number;

  constructor(
    buffer: SharedArrayBuffer | ArrayBuffer,
    private readonly layout: ChannelLayout,
    private readonly dir: Direction,
  ) {
    this.i32 = new Int32Array(buffer, 0, layout.totalBytes >> 2);
    this.u32 = new Uint32Array(buffer, 0, layout.totalBytes >> 2);
    this.buf = Buffer.from(buffer, 0, layout.totalBytes);
    this.f64 = new Float64Array(buffer, 0, layout.totalBytes >> 3);
    this.mask = layout.slots - 1;
    this.slotBytes = layout.slotBytes;
    this.overflowBytes = layout.overflowBytes;
    this.cursor = Atomics.load(this.i32, dir.tail) >>> 0;
    this.overflowCursor = Atomics.load(this.i32, dir.overflowWrite) >>> 0;
  }

  /** Consumer view starts at the published head; producer view at the published tail. */
  static consumer(buffer: SharedArrayBuffer | ArrayBuffer, layout: ChannelLayout, dir: Direction): SlotRing {
    const ring = new SlotRing(buffer, layout, dir);
    ring.cursor = Atomics.load(ring.i32, dir.head) >>> 0;
    ring.overflowCursor = Atomics.load(ring.i32, dir.overflowRead) >>> 0;
    return ring;
  }

  /** Producer: the counter value the next write publishes past. */
  get position(): number {
    return this.cursor;
  }

  /**
   * Producer: writes one message and publishes it. Returns false, writing nothing, when the
   * payload needs overflow space that the consumer has not yet released.
   * The caller guarantees a free slot (calls in flight never exceed the slot count).
   */
  write(ticket: number, kind: number, time: number, payload: Payload, refs: readonly ArenaRef[] | null, publish = true): boolean {
    const refCount = refs === null ? 0 : refs.length;
    if (refCount > Slot.MAX_REFS) throw new RangeError(`a message carries at most ${Slot.MAX_REFS} arena references, got ${refCount}`);
    const base = this.dir.slotsOffset + (this.cursor & this.mask) * this.slotBytes;
    const w = base >> 2;
    const length = payloadLength(payload);
    let flags = 0;
    if (length <= inlineCapacity(this.layout, refCount)) {
      copyPayload(payload, this.buf, base + Slot.HEADER_BYTES + refCount * Slot.REF_BYTES);
    } else {
      const pos = this.reserveOverflow(length);
      if (pos < 0) return false;
      copyPayload(payload, this.buf, this.dir.overflowOffset + (pos % this.overflowBytes));
      this.u32[w + (Slot.OVERFLOW_POS >> 2)] = pos;
      flags |= SlotFlag.OVERFLOW;
    }
    this.u32[w + (Slot.TICKET >> 2)] = ticket;
    this.u32[w + (Slot.KIND >> 2)] = kind;
    this.u32[w + (Slot.PAYLOAD_BYTES >> 2)] = length;
    this.u32[w + (Slot.FLAGS >> 2)] = flags;
    this.u32[w + (Slot.REF_COUNT >> 2)] = refCount;
    this.f64[(base + Slot.TIME) >> 3] = time;
    for (let i = 0; i < refCount; i++) {
      const ref = refs![i]!;
      const r = w + ((Slot.HEADER_BYTES + i * Slot.REF_BYTES) >> 2);
      this.u32[r] = ref.field;
      this.u32[r + 1] = ref.offset;
      this.u32[r + 2] = ref.length;
    }
    this.cursor = (this.cursor + 1) >>> 0;
    if (publish) Atomics.store(this.i32, this.dir.tail, this.cursor | 0);
    return true;
  }

  /** Producer: messages written that the consumer has not yet released. */
  get unread(): number {
    return (this.cursor - (Atomics.load(this.i32, this.dir.head) >>> 0)) >>> 0;
  }

  /** Producer: publishes what was written with `publish` false. */
  publish(): void {
    Atomics.store(this.i32, this.dir.tail, this.cursor | 0);
  }

  /** Producer: marks the written, not yet published request at `position` as the lead of a batch of `size`. */
  markBatch(position: number, size: number): void {
    const w = (this.dir.slotsOffset + (position & this.mask) * this.slotBytes + Slot.FLAGS) >> 2;
    this.u32[w] = (this.u32[w]! & ((1 << SlotFlag.BATCH_SHIFT) - 1)) | (size << SlotFlag.BATCH_SHIFT);
  }

  /** Overflow records are contiguous: one that would straddle the end starts again at 0. */
  private reserveOverflow(length: number): number {
    const need = (length + 63) & ~63;
    if (need > this.overflowBytes) return -2;
    let start = this.overflowCursor;
    const offset = start % this.overflowBytes;
    if (offset + need > this.overflowBytes) start = (start + (this.overflowBytes - offset)) >>> 0;
    const read = Atomics.load(this.i32, this.dir.overflowRead) >>> 0;
    if (((start + need - read) >>> 0) > this.overflowBytes) return -1;
    this.overflowCursor = (start + need) >>> 0;
    Atomics.store(this.i32, this.dir.overflowWrite, this.overflowCursor | 0);
    return start;
  }

  /** Whether a payload of this size can ever pass through this ring. */
  fits(length: number, refCount: number): boolean {
    return payloadFits(this.layout, length, refCount);
  }

  /** Consumer: whether a message is waiting. */
  hasMessage(): boolean {
    return (Atomics.load(this.i32, this.dir.tail) >>> 0) !== this.cursor;
  }

  /** Consumer: the counter value of the next message to read. */
  get consumed(): number {
    return this.cursor;
  }

  /** Overflow position to publish when the message being read is released (-1: none). */
  private overflowRelease = -1;

  /** Why the last read() returned null: what the producer wrote that no honest producer writes. */
  corruption = '';

  /**
   * Consumer: describes the next message in `out` without releasing it. Call only after
   * hasMessage(), and call release() once the payload has been decoded.
   *
   * The producer may be a hostile process worker, so nothing read from shared memory is used
   * before it is checked: the published tail, the reference count, and the payload's extent
   * (inline within its slot, or an overflow record wholly inside the overflow ring and inside
   * the span the producer may hold). On a violation it returns null, consumes nothing, and
   * names the violation in `corruption`; the ring is then unusable and its worker must go.
   */
  read(out: SlotMessage): SlotMessage | null {
    if (((Atomics.load(this.i32, this.dir.tail) - this.cursor) >>> 0) > this.layout.slots) return this.corrupt('its tail counter ran past the ring');
    const base = this.dir.slotsOffset + (this.cursor & this.mask) * this.slotBytes;
    const w = base >> 2;
    const length = this.u32[w + (Slot.PAYLOAD_BYTES >> 2)]!;
    const flags = this.u32[w + (Slot.FLAGS >> 2)]!;
    const refCount = this.u32[w + (Slot.REF_COUNT >> 2)]!;
    if (refCount > Slot.MAX_REFS) return this.corrupt('a slot has too many arena references');
    let pos = 0;
    if ((flags & SlotFlag.OVERFLOW) === 0) {
      if (length > inlineCapacity(this.layout, refCount)) return this.corrupt('an inline payload is longer than its slot');
    } else {
      pos = this.u32[w + (Slot.OVERFLOW_POS >> 2)]!;
      if (length > this.overflowBytes) return this.corrupt('an overflow payload is longer than the overflow ring');
      const need = (length + 63) & ~63;
      // Records never straddle the end, and never reach past what the consumer has released.
      if ((pos % this.overflowBytes) + need > this.overflowBytes) return this.corrupt('an overflow record runs past the end of the overflow ring');
      const released = Atomics.load(this.i32, this.dir.overflowRead) >>> 0;
      if (((pos - released) >>> 0) + need > this.overflowBytes) return this.corrupt('an overflow record lies outside the span the producer holds');
    }
    out.ticket = this.u32[w + (Slot.TICKET >> 2)]!;
    out.kind = this.u32[w + (Slot.KIND >> 2)]!;
    out.time = this.f64[(base + Slot.TIME) >> 3]!;
    out.batch = flags >>> SlotFlag.BATCH_SHIFT;
    out.bytes = this.buf;
    out.length = length;
    if (refCount === 0) out.refs = null;
    else {
      const refs: ArenaRef[] = [];
      for (let i = 0; i < refCount; i++) {
        const r = w + ((Slot.HEADER_BYTES + i * Slot.REF_BYTES) >> 2);
        refs.push({ field: this.u32[r]!, offset: this.u32[r + 1]!, length: this.u32[r + 2]! });
      }
      out.refs = refs;
    }
    if ((flags & SlotFlag.OVERFLOW) === 0) {
      out.start = base + Slot.HEADER_BYTES + refCount * Slot.REF_BYTES;
    } else {
      out.start = this.dir.overflowOffset + (pos % this.overflowBytes);
      this.overflowRelease = (pos + ((length + 63) & ~63)) >>> 0;
    }
    return out;
  }

  private corrupt(reason: string): null {
    this.corruption = reason;
    return null;
  }

  /** Consumer: hands the slot (and its overflow bytes) of the message last read back to the producer. */
  release(): void {
    if (this.overflowRelease >= 0) {
      Atomics.store(this.i32, this.dir.overflowRead, this.overflowRelease | 0);
      this.overflowRelease = -1;
    }
    this.cursor = (this.cursor + 1) >>> 0;
    Atomics.store(this.i32, this.dir.head, this.cursor | 0);
  }
}

export function newSlotMessage(): SlotMessage {
  return { ticket: 0, kind: 0, time: 0, bytes: EMPTY, start: 0, length: 0, refs: null, batch: 0 };
}
