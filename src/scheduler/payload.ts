/**
 * A message payload on its way into a ring: finished bytes, or a protobufjs Writer that has not
 * been finished. Copying a Writer's operations straight into the slot skips the buffer that
 * `finish()` would allocate and one copy of every byte, on both sides of every call.
 *
 * The Writer shape is protobufjs's own (an operation list headed by a no-op); it has been stable
 * across its major versions, and test/scheduler/payload.test.ts pins it.
 */
interface WriterOp {
  fn(val: unknown, buf: Uint8Array, pos: number): void;
  readonly len: number;
  readonly val: unknown;
  readonly next: WriterOp | null | undefined;
}

export interface UnfinishedWriter {
  readonly len: number;
  readonly head: { readonly next: WriterOp | null | undefined };
  finish(): Uint8Array;
}

export type Payload = Uint8Array | UnfinishedWriter;

export function payloadLength(payload: Payload): number {
  return payload instanceof Uint8Array ? payload.length : payload.len;
}

/** Writes the payload at `pos`; `buf` must be a Buffer (protobufjs's string ops call Buffer methods). */
export function copyPayload(payload: Payload, buf: Uint8Array, pos: number): void {
  if (payload instanceof Uint8Array) {
    buf.set(payload, pos);
    return;
  }
  for (let op = payload.head.next; op != null; op = op.next) {
    op.fn(op.val, buf, pos);
    pos += op.len;
  }
}

/** Snapshots a payload that has to wait (its Writer may still point at the caller's buffers). */
export function settlePayload(payload: Payload): Uint8Array {
  return payload instanceof Uint8Array ? payload : payload.finish();
}
