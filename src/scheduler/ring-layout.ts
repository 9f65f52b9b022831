/**
 * The one definition of a worker channel's shared memory: two single-producer/single-consumer
 * rings of fixed slots (requests controller→worker, completions worker→controller), a small
 * ring of cancelled tickets, and one overflow byte ring per direction for payloads larger than
 * a slot. Both sides import these constants; nothing else knows an offset.
 *
 * Counters (tails, heads, overflow positions) are free-running u32 values; an index is
 * `counter & (count - 1)`. Each counter that one side writes sits on its own 64-byte line so
 * the two cores never share a line they both write.
 */

/** Int32 word index of each control counter. One cache line (16 words) apart. */
export const Word = {
  REQ_TAIL: 0 * 16,
  REQ_HEAD: 1 * 16,
  /** 1 while the worker is parked (or about to park) in a wait on REQ_TAIL. */
  WORKER_PARKED: 1 * 16 + 1,
  CMP_TAIL: 2 * 16,
  CMP_HEAD: 3 * 16,
  /** 1 while the controller has an Atomics.waitAsync pending on CMP_TAIL. */
  CONTROLLER_PARKED: 3 * 16 + 1,
  CANCEL_TAIL: 4 * 16,
  CANCEL_HEAD: 5 * 16,
  REQ_OVF_WRITE: 6 * 16,
  REQ_OVF_READ: 7 * 16,
  CMP_OVF_WRITE: 8 * 16,
  CMP_OVF_READ: 9 * 16,
  /** Set by the controller to ask the worker to leave its loop. */
  SHUTDOWN: 10 * 16,
  /** 1 while the latest request came from a mesh peer (its caller's next one is a network round trip away). */
  PEER_CALLER: 10 * 16 + 1,
} as const;

export const CONTROL_BYTES = 11 * 64;

/**
 * Slot header, in bytes from the slot start. Arena references (12 bytes each) follow the header,
 * then the inline payload.
 */
export const Slot = {
  TICKET: 0,
  /** Request: index of the capability in the worker's table. Completion: a Status. */
  KIND: 4,
  PAYLOAD_BYTES: 8,
  /** Overflow ring position of the payload when FLAG_OVERFLOW is set. */
  OVERFLOW_POS: 12,
  FLAGS: 16,
  REF_COUNT: 20,
  /** Request: absolute deadline in epoch ms (0 = none). Completion: handler busy time in ns. */
  TIME: 24,
  HEADER_BYTES: 32,
  REF_BYTES: 12,
  MAX_REFS: 8,
} as const;

/**
 * A cancel entry names a request by its ring position (unique per request), not by its ticket:
 * tickets are reused as soon as a completion arrives, and a cancel may be read after that.
 * Word 0: request position. Word 1: a CancelReason.
 */
export const CANCEL_ENTRY_BYTES = 8;

export const CancelReason = {
  CANCELLED: 0,
  DEADLINE: 1,
} as const;

export const SlotFlag = {
  OVERFLOW: 1,
  /**
   * Request flags above this bit hold a batch's size, on the first request of a batch: it and the
   * next size - 1 requests (published together) go to one handler invocation. 0: not a batch lead.
   */
  BATCH_SHIFT: 16,
} as const;

export const Status = {
  OK: 0,
  ERROR: 1,
} as const;

export interface ChannelConfig {
  /** Slots per ring; a power of two. Also the hard cap on calls in flight on one worker. */
  readonly slots: number;
  /** Bytes per slot; a multiple of 64, at least 128. */
  readonly slotBytes: number;
  /** Bytes of each overflow ring; a power of two (the modular arithmetic of its counters needs it). Bounds one payload that does not fit a slot. */
  readonly overflowBytes: number;
}

export const defaultChannelConfig: ChannelConfig = {
  slots: 256,
  slotBytes: 256,
  overflowBytes: 4 * 1024 * 1024,
};

export interface ChannelLayout extends ChannelConfig {
  readonly cancelOffset: number;
  readonly requestOffset: number;
  readonly completionOffset: number;
  readonly requestOverflowOffset: number;
  readonly completionOverflowOffset: number;
  readonly totalBytes: number;
}

const align64 = (n: number): number => (n + 63) & ~63;

export function computeLayout(config: ChannelConfig): ChannelLayout {
  const cancelOffset = CONTROL_BYTES;
  const requestOffset = align64(cancelOffset + config.slots * CANCEL_ENTRY_BYTES);
  const completionOffset = requestOffset + config.slots * config.slotBytes;
  const requestOverflowOffset = completionOffset + config.slots * config.slotBytes;
  const completionOverflowOffset = requestOverflowOffset + config.overflowBytes;
  const totalBytes = completionOverflowOffset + config.overflowBytes;
  return { ...config, cancelOffset, requestOffset, completionOffset, requestOverflowOffset, completionOverflowOffset, totalBytes };
}

/** Largest payload that fits inline in a slot with `refCount` arena references. */
export function inlineCapacity(layout: ChannelConfig, refCount: number): number {
  return layout.slotBytes - Slot.HEADER_BYTES - refCount * Slot.REF_BYTES;
}

/** Whether a payload of this size can ever cross a channel of this geometry (inline, or as one overflow record). */
export function payloadFits(config: ChannelConfig, length: number, refCount: number): boolean {
  return length <= inlineCapacity(config, refCount) || ((length + 63) & ~63) <= config.overflowBytes;
}
