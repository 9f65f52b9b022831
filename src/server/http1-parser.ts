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
/** Bytes of a token (RFC 9110 tchar): 1, or 2 for an upper-case letter; 0 for any other byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 2;
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
    const text = buf.toString('latin1', 0, end);
    this.#buf = buf.subarray(end + 4);
    const line = requestLine(text);
    if (line === null) return { kind: 'error', status: 400, message: `not an HTTP/1.x request line: ${JSON.stringify(text.slice(0, Math.min(100, text.indexOf('\r\n') >>> 0)))}` };
    const headers = new Map<string, string>();
    // Character by character, not split and regular expressions: this runs for every request.
    for (let at = line.next; at < end; ) {
      let eol = text.indexOf('\r\n', at);
      if (eol < 0) eol = end;
      let i = at;
      let upper = false;
      for (; i < eol; i++) {
        const t = TCHAR[text.charCodeAt(i)]!;
        if (t === 0) break;
        if (t === 2) upper = true;
      }
      if (i === at || text.charCodeAt(i) !== 58) return { kind: 'error', status: 400, message: `malformed header line: ${JSON.stringify(text.slice(at, Math.min(eol, at + 100)))}` };
      const key = upper ? text.slice(at, i).toLowerCase() : text.slice(at, i);
      let from = i + 1;
      let to = eol;
      while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
      while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--;
      for (let k = from; k < to; k++) {
        const c = text.charCodeAt(k);
        // A CR or LF inside a value is how a second request gets smuggled into the first.
        if ((c < 32 && c !== 9) || c === 127) return { kind: 'error', status: 400, message: `header ${JSON.stringify(key)} holds a control character (${c})` };
      }
      const value = text.slice(from, to);
      const seen = headers.get(key);
      headers.set(key, seen === undefined ? value : `${seen}, ${value}`);
      at = eol + 2;
    }
    const minor = line.minor;
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
      if (!isDigits(only)) return { kind: 'error', status: 400, message: `Content-Length ${JSON.stringify(cl)} is not one whole number` };
      length = Number(only);
      if (length > this.limits.maxBodyBytes) return { kind: 'error', status: 413, message: '', tooLarge: length };
    }
    const expect = headers.get('expect');
    if (expect !== undefined && expect.toLowerCase() !== '100-continue') return { kind: 'error', status: 417, message: `Expect ${JSON.stringify(expect)} is not supported` };
    return {
      kind: 'head',
      pending: { method: line.method, url: line.url, minor, headers, keepAlive, length, continueSent: expect === undefined || minor === 0, chunks: [], size: 0, chunkLeft: -1 },
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

/** `method SP request-target SP HTTP/1.x` up to the first CRLF; `next` is where the headers start. */
function requestLine(text: string): { method: string; url: string; minor: number; next: number } | null {
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  let i = 0;
  while (i < eol && TCHAR[text.charCodeAt(i)] !== 0) i++;
  if (i === 0 || text.charCodeAt(i) !== 32) return null;
  const from = ++i;
  // Any visible byte, as node:http's parser takes it; no spaces or control characters.
  for (let c = text.charCodeAt(i); i < eol && c > 32 && c !== 127; c = text.charCodeAt(++i));
  if (i === from || eol - i !== 9 || !text.startsWith(' HTTP/1.', i)) return null;
  const minor = text.charCodeAt(eol - 1) - 48;
  if (minor !== 0 && minor !== 1) return null;
  return { method: text.slice(0, from - 1), url: text.slice(from, i), minor, next: eol + 2 };
}

/** One or more ASCII digits (what Content-Length allows), without a regular expression per request. */
function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
