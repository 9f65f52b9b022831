/**
 * The typed face of the native net addon (native/net, build/Release/caphost_net.node): a TCP
 * server on Node's own event loop with plain syscalls and one callback per event, for the HTTP
 * server under `caphost serve` (see native/net/tcp_server.cc for why).
 */
import { getSystemErrorName } from 'node:util';
import { loadAddon } from './load-addon.js';

/**
 * What onEvent reports. SLAB hands over the Buffer that reads go into from now on (`value`);
 * DATA is `length` bytes at offset `value` of the current slab, which is never written again;
 * CLOSE's `value` is an errno (0: none).
 */
export const NetEvent = { CONNECTION: 0, DATA: 1, END: 2, DRAIN: 3, CLOSE: 4, SLAB: 5 } as const;

export type NetEventHandler = (kind: number, id: number, value: Buffer | number | undefined, length: number) => void;

export interface TcpServer {
  /** Binds a numeric IPv4 or IPv6 address and starts accepting; returns the port bound. */
  listen(address: string, port: number, backlog: number): number;
  /**
   * Writes head (latin1) then body (a utf8 string or bytes) in one sendmsg. What the kernel does
   * not take now is kept, in order, and written when the socket drains (a DRAIN event follows).
   * Returns the bytes kept (0: all written), or -1 when the connection is gone or ending.
   */
  write(id: number, head: string, body?: string | Uint8Array): number;
  /** Bytes kept by write() and not yet written. */
  pending(id: number): number;
  /** Stops reading the connection (the peer's sends fill the kernel's buffers, then stall). */
  pause(id: number): void;
  resume(id: number): void;
  /** Shuts down writing once what is kept is written; reading goes on. */
  end(id: number): void;
  /** Closes at once; its CLOSE event follows from the loop. */
  destroy(id: number): void;
  /** Stops accepting. Open connections stay. */
  close(): void;
}

interface NetBinding {
  TcpServer: new (onEvent: NetEventHandler) => TcpServer;
}

let cached: NetBinding | undefined;

/** A TCP server that reports to onEvent; throws CaphostError(NATIVE_ERROR) when the addon is missing. */
export function createTcpServer(onEvent: NetEventHandler): TcpServer {
  cached ??= loadAddon<NetBinding>('caphost_net');
  return new cached.TcpServer(onEvent);
}

/** A native listen() failure as an Error worded as node:net words it ("bind EADDRINUSE: Address already in use"). */
export function listenError(err: unknown): Error {
  const e = err as { message?: string; errno?: number; syscall?: string };
  if (typeof e.errno !== 'number' || typeof e.syscall !== 'string') return err instanceof Error ? err : new Error(String(err));
  const reason = (e.message ?? '').split(' failed: ').pop();
  return Object.assign(new Error(`${e.syscall} ${getSystemErrorName(-e.errno)}: ${reason}`, { cause: err }), { errno: e.errno, syscall: e.syscall });
}
