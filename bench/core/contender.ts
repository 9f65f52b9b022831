/**
 * One worker-call mechanism under test. Each core figure is measured the same
 * way for every contender, so the comparison is only about the mechanism.
 */

export interface Contender {
  readonly subject: string;
  /** One round trip of a 64-byte payload. */
  call64(): Promise<unknown>;
  /** Hand the 1 MiB Float32Array to the worker and get it back. */
  handoff(): Promise<unknown>;
  /** Run once before timing: the echo is faithful and the hand-off is what it claims to be. */
  verify(): Promise<void>;
  close(): Promise<void>;
}

export const PAYLOAD_BYTES = 64;
export const HANDOFF_BYTES = 1 << 20;

export function makePayload(): Uint8Array {
  return new Uint8Array(PAYLOAD_BYTES).fill(0xab);
}

export function assertEcho(subject: string, sent: Uint8Array, got: unknown): void {
  if (!(got instanceof Uint8Array) || got.byteLength !== sent.byteLength || !got.every((v, i) => v === sent[i])) {
    throw new Error(`${subject}: 64-byte echo came back wrong (${describe(got)})`);
  }
}

/** Marks both ends of the array so a round trip that loses or mangles it is caught. */
export function stamp(f: Float32Array): void {
  f[0] = 42.5;
  f[f.length - 1] = -7.25;
}

export function assertStamped(subject: string, got: unknown): Float32Array {
  if (!(got instanceof Float32Array) || got.byteLength !== HANDOFF_BYTES || got[0] !== 42.5 || got[got.length - 1] !== -7.25) {
    throw new Error(`${subject}: 1 MiB hand-off came back wrong (${describe(got)})`);
  }
  return got;
}

function describe(v: unknown): string {
  if (ArrayBuffer.isView(v)) return `${v.constructor.name} of ${v.byteLength} bytes`;
  return v === null ? 'null' : typeof v;
}
