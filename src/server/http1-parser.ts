/**
 * An incremental HTTP/1.1 request parser for `caphost serve`: request line, headers, and a body
 * framed by Content-Length or chunked transfer coding, under header and body size limits. It
 * parses one connection's bytes in order and hands out whole requests; what it refuses comes out
 * as an error with the status to answer (RFC 9112). Hand-written because node:http's per-request
 * machinery (streams, events, objects per request) was most of the server's cost per call.
 */

export interface ParsedRequest {
  readonly method: string;
  /** The request-target as sent (origin-form: path and query). */
  readonly url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: number;
  /** Lower-case names; repeated headers joined with ", ". A Map: header names are the client's. */
  readonly headers: ReadonlyMap<string, string>;
  /** Whether the connection stays open after the answer, as the client asked. */
  readonly keepAlive: boolean;
  readonly body: Buffer;
}

export type ParseEvent =
  | { readonly kind: 'request'; readonly request: ParsedRequest }
  /** The client waits for "100 Continue" before it sends the body. */
  | { readonly kind: 'continue' }
  /** The connection cannot go on: answer `status` and close it. */
  | { readonly kind: 'error'; readonly status: number; readonly message: string; readonly tooLarge?: number };

export interface ParserLimits {
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.([01])$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DIGITS = /^\d+$/;
const CLOSE = /(?:^|,)\s*close\s*(?:,|$)/i;
const KEEP_ALIVE = /(?:^|,)\s*keep-alive\s*(?:,|$)/i;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/;

interface Pending {
  method: string;
  url: string;
  minor: number;
  headers: Map<string, string>;
  keepAlive: boolean;
  /** Content-Length, or -1 for chunked. */
  length: number;
  continueSent: boolean;
  chunks: Buffer[];
  size: number;
  /** Chunked: bytes left of the current chunk's data; -1 at a size line; -2 in the trailers. */
  chunkLeft: number;
}

export class Http1Parser {
  #buf: Buffer = EMPTY;
  /** Chunks not yet joined to #buf: a long body is joined once, not once per chunk. */
  #parts: Buffer[] = [];
  #partsBytes = 0;
  #pending: Pending | null = null;
  #failed = false;

  constructor(private readonly limits: ParserLimits) {}

  push(chunk: Buffer): void {
    if (this.#buf.length === 0 && this.#partsBytes === 0) this.#buf = chunk;
    else {
      this.#parts.push(chunk);
      this.#partsBytes += chunk.length;
    }
  }

  #join(): Buffer {
    if (this.#partsBytes > 0) {
      this.#buf = Buffer.concat([this.#buf, ...this.#parts], this.#buf.length + this.#partsBytes);
      this.#parts = [];
      this.#partsBytes = 0;
    }
    return this.#buf;
  }

  /** Bytes received and not yet handed out. */
  get buffered(): number {
    return this.#buf.length + this.#partsBytes;
  }

  /** True while part of a request has arrived; `headersDone` says whether its headers are complete. */
  get midRequest(): boolean {
    return this.#pending !== null || this.buffered > 0;
  }

  get headersDone(): boolean {
    return this.#pending !== null;
  }

  /** The next whole request, a 100-continue to send, an error, or null when more bytes are needed. */
  next(): ParseEvent | null {
    if (this.#failed) return null;
    if (this.#pending === null) {
      const head = this.#head();
      if (head === null || head.kind === 'error') return head === null ? null : this.#fail(head);
      this.#pending = head.pending;
    }
    return this.#body(this.#pending);
  }

  #fail(event: Extract<ParseEvent, { kind: 'error' }>): ParseEvent {
    this.#failed = true;
    this.#buf = EMPTY;
    this.#parts = [];
    this.#partsBytes = 0;
    return event;
  }

  #head(): { kind: 'head'; pending: Pending } | Extract<ParseEvent, { kind: 'error' }> | null {
    let buf = this.#join();
    // Empty lines before a request line are allowed (RFC 9112 §2.2).
    let start = 0;
    while (buf.length >= start + 2 && buf[start] === 13 && buf[start + 1] === 10) start += 2;
    if (start > 0) buf = this.#buf = buf.subarray(start);
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > this.limits.maxHeaderBytes) return { kind: 'error', status: 431, message: `the request line and headers pass ${this.limits.maxHeaderBytes} bytes` };
      return null;
    }
    if (end > this.limits.maxHeaderBytes) return { kind: 'error', status: 431, message: `the request line and headers pass ${this.limits.maxHeaderBytes} bytes` };
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    this.#buf = buf.subarray(end + 4);
    const line = REQUEST_LINE.exec(lines[0]!);
    if (line === null) return { kind: 'error', status: 400, message: `not an HTTP/1.x request line: ${JSON.stringify(lines[0]!.slice(0, 100))}` };
    const headers = new Map<string, string>();
    for (let i = 1; i < lines.length; i++) {
      const h = lines[i]!;
      const colon = h.indexOf(':');
      const name = colon > 0 ? h.slice(0, colon) : '';
      if (!TOKEN.test(name)) return { kind: 'error', status: 400, message: `malformed header line: ${JSON.stringify(h.slice(0, 100))}` };
      const key = name.toLowerCase();
      const value = h.slice(colon + 1).trim();
      const seen = headers.get(key);
      headers.set(key, seen === undefined ? value : `${seen}, ${value}`);
    }
    const minor = line[3] === '1' ? 1 : 0;
    const connection = headers.get('connection');
    const keepAlive = connection === undefined ? minor === 1 : minor === 1 ? !CLOSE.test(connection) : KEEP_ALIVE.test(connection);
    let length = 0;
    const te = headers.get('transfer-encoding');
    const cl = headers.get('content-length');
    if (te !== undefined) {
      // Both framings at once is how requests get smuggled past proxies: refuse (RFC 9112 §6.3).
      if (cl !== undefined) return { kind: 'error', status: 400, message: 'the request has both Transfer-Encoding and Content-Length' };
      if (minor === 0 || !/(?:^|,)\s*chunked\s*$/i.test(te)) return { kind: 'error', status: 501, message: `Transfer-Encoding ${JSON.stringify(te)} is not supported; send chunked or a Content-Length` };
      length = -1;
    } else if (cl !== undefined) {
      // Repeated Content-Length headers with one value are allowed; different values are not.
      let only = cl;
      if (cl.includes(',')) {
        const values = new Set(cl.split(',').map((v) => v.trim()));
        only = values.size === 1 ? [...values][0]! : '';
      }
      if (!DIGITS.test(only)) return { kind: 'error', status: 400, message: `Content-Length ${JSON.stringify(cl)} is not one whole number` };
      length = Number(only);
      if (length > this.limits.maxBodyBytes) return { kind: 'error', status: 413, message: '', tooLarge: length };
    }
    const expect = headers.get('expect');
    if (expect !== undefined && expect.toLowerCase() !== '100-continue') return { kind: 'error', status: 417, message: `Expect ${JSON.stringify(expect)} is not supported` };
    return {
      kind: 'head',
      pending: { method: line[1]!, url: line[2]!, minor, headers, keepAlive, length, continueSent: expect === undefined || minor === 0, chunks: [], size: 0, chunkLeft: -1 },
    };
  }

  #body(p: Pending): ParseEvent | null {
    if (p.length >= 0) {
      if (this.buffered < p.length) return this.#continue(p);
      this.#join();
      const body = p.length === 0 ? EMPTY : this.#buf.subarray(0, p.length);
      this.#buf = this.#buf.length === p.length ? EMPTY : this.#buf.subarray(p.length);
      return this.#done(p, body);
    }
    for (;;) {
      this.#join();
      if (p.chunkLeft > 0) {
        const take = Math.min(p.chunkLeft, this.#buf.length);
        if (take === 0) return this.#continue(p);
        p.chunks.push(this.#buf.subarray(0, take));
        this.#buf = this.#buf.subarray(take);
        p.chunkLeft -= take;
        if (p.chunkLeft > 0) return null;
        p.chunkLeft = -3; // the CRLF after the data
      }
      const eol = this.#buf.indexOf(CRLF);
      if (eol < 0) {
        if (this.#buf.length > this.limits.maxHeaderBytes) return this.#fail({ kind: 'error', status: 400, message: 'a chunk size or trailer line is too long' });
        return this.#continue(p);
      }
      const text = this.#buf.toString('latin1', 0, eol);
      this.#buf = this.#buf.subarray(eol + 2);
      if (p.chunkLeft === -3) {
        if (text !== '') return this.#fail({ kind: 'error', status: 400, message: 'chunk data is not followed by CRLF' });
        p.chunkLeft = -1;
      } else if (p.chunkLeft === -2) {
        // Trailers are read and dropped; the empty line ends the request.
        if (text === '') return this.#done(p, p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks, p.size));
      } else {
        const m = CHUNK_SIZE.exec(text);
        if (m === null) return this.#fail({ kind: 'error', status: 400, message: `malformed chunk size line: ${JSON.stringify(text.slice(0, 40))}` });
        const size = parseInt(m[1]!, 16);
        if (size === 0) {
          p.chunkLeft = -2;
          continue;
        }
        p.size += size;
        if (p.size > this.limits.maxBodyBytes) return this.#fail({ kind: 'error', status: 413, message: '', tooLarge: p.size });
        p.chunkLeft = size;
      }
    }
  }

  #continue(p: Pending): ParseEvent | null {
    if (p.continueSent) return null;
    p.continueSent = true;
    return { kind: 'continue' };
  }

  #done(p: Pending, body: Buffer): ParseEvent {
    this.#pending = null;
    return { kind: 'request', request: { method: p.method, url: p.url, minor: p.minor, headers: p.headers, keepAlive: p.keepAlive, body } };
  }
}
