/**
 * One cross-process call mechanism under test. Every process figure is
 * measured the same way for every contender, so the comparison is only about
 * the mechanism: a caphost process worker, a Unix-domain socket, fork IPC.
 */
export { assertEcho, makePayload, PAYLOAD_BYTES } from '../core/contender.js';

export interface Contender {
  readonly subject: string;
  /** One round trip of a 64-byte payload to another process and back. */
  call64(): Promise<unknown>;
  /** Run once before timing: the echo is faithful. */
  verify(): Promise<void>;
  close(): Promise<void>;
}

export interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}
