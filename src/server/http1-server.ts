/**
 * The HTTP/1.1 server under `caphost serve`: connections from the native TCP server
 * (src/native/net-binding.ts), Http1Parser, keep-alive, pipelined requests answered in order,
 * "100 Continue", and the three timeouts node:http has (headers, whole request, idle keep-alive).
 * A handler gets a whole request (body included) and answers it once through Http1Response. It
 * does only what an inference server needs: no upgrades, no streaming bodies, no trailers.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { CaphostError, ErrorCode } from '../errors.js';
import { createTcpServer, listenError, NetEvent, type TcpServer } from '../native/net-binding.js';
import { Http1Parser, type ParsedRequest, type ParserLimits } from './http1-parser.js';

export interface Http1Options extends ParserLimits {
  /** From the first byte of a request to the end of its headers. */
  readonly headersTimeoutMs: number;
  /** From the first byte of a request to the end of its body. */
  readonly requestTimeoutMs: number;
  /** How long a connection may sit idle between requests. */
  readonly keepAliveTimeoutMs: number;
}

export type Http1Request = ParsedRequest;

export interface Http1Address {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6';
  readonly port: number;
}

/**
 * What the server does with a request it refused before any handler saw it (malformed, too
 * large, timed out): `status` is the answer's status, `tooLarge` the size when it is 413.
 */
export type RefusalHandler = (res: Http1Response, status: number, message: string, tooLarge: number | undefined) => void;

const REASONS: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
  409: 'Conflict', 413: 'Payload Too Large', 417: 'Expectation Failed', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
/** Status lines, built once: the head of every answer starts with one. */
const STATUS_LINES = new Map(Object.entries(REASONS).map(([code, reason]) => [Number(code), `HTTP/1.1 ${code} ${reason}\r\n`]));

/** One answer to one request. send() writes it whole; a second send() is a bug and throws. */
export class Http1Response {
  #sent = false;

  constructor(
    private readonly connection: Connection,
    /** HEAD answers carry the headers of the GET answer, no body. */
    private readonly head: boolean,
    private readonly keepAlive: boolean,
    private readonly minor: number,
  ) {}

  /** Aborted when the client's connection closes (one signal per connection, shared by its requests). */
  get disconnected(): AbortSignal {
    return this.connection.disconnected();
  }

  get headersSent(): boolean {
    return this.#sent;
  }

  /** The client is gone: nothing written now would reach it. */
  get destroyed(): boolean {
    return this.connection.lost;
  }

  /**
   * Writes status, headers (name, value pairs; Content-Length and Connection are added here) and
   * body in one write. `close` ends the connection after it, as does a client that asked so.
   */
  send(status: number, headers: readonly string[], body: string | Buffer, close = false): void {
    if (this.#sent) throw new Error('caphost: an HTTP response was sent twice');
    this.#sent = true;
    const connection = this.connection;
    if (connection.lost) return;
    const keep = this.keepAlive && !close;
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    let head = STATUS_LINES.get(status) ?? `HTTP/1.1 ${status} Unknown\r\n`;
    for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    head += `Content-Length: ${length}\r\n`;
    if (!keep) head += 'Connection: close\r\n\r\n';
    else head += this.minor === 0 ? 'Connection: keep-alive\r\n\r\n' : '\r\n';
    connection.write(head, this.head || length === 0 ? undefined : body);
    this.connection.answered(!keep);
  }

  /** Drops the connection without an answer (one was half sent, or the client must not wait). */
  destroy(): void {
    this.#sent = true;
    this.connection.destroy();
  }
}

type ConnectionState = 'idle' | 'reading' | 'busy' | 'closing';

class Connection {
  readonly parser: Http1Parser;
  state: ConnectionState = 'idle';
  /** Its CLOSE event came: the id is gone, nothing more can be written. */
  closed = false;
  /** The client went away (it closed or sent its FIN): nothing written now would be read. */
  lost = false;
  /** Inside drive(): an answer sent synchronously lets drive's loop go on instead of recursing. */
  private driving = false;
  /** Reading is stopped: pipelined requests pile up (`full`), or answers wait to be written (`draining`). */
  private full = false;
  private draining = false;
  private paused = false;
  #disconnect: AbortController | undefined;
  /** Date.now() when the state (or, while reading, the request) began. */
  since = Date.now();
  /** Date.now() when the client last took some of the answers that wait for it, and how much waited then. */
  private drainSince = 0;
  private drainLeft = 0;

  constructor(
    readonly id: number,
    private readonly server: Http1Server,
  ) {
    this.parser = new Http1Parser(server.options);
  }

  disconnected(): AbortSignal {
    this.#disconnect ??= new AbortController();
    if (this.lost && !this.#disconnect.signal.aborted) this.#abort();
    return this.#disconnect.signal;
  }

  #abort(): void {
    this.#disconnect?.abort(new CaphostError(ErrorCode.CANCELLED, 'the client closed its connection'));
  }

  received(chunk: Buffer): void {
    if (this.state === 'closing') return;
    if (this.state === 'idle') {
      this.state = 'reading';
      this.since = Date.now();
    }
    this.parser.push(chunk);
    if (this.state !== 'busy') this.drive();
    // A client that pipelines faster than we answer waits for us: stop reading until we catch up.
    else if (this.parser.buffered > this.server.options.maxHeaderBytes + this.server.options.maxBodyBytes) {
      this.full = true;
      this.#flow();
    }
  }

  /**
   * The client sent its FIN. As node:http does by default (httpAllowHalfOpen false), that is a
   * client that went away: its calls are cancelled, and the connection closes once what was
   * already written has gone out (the TCP server closes a socket ended on both sides).
   */
  ended(): void {
    this.lost = true;
    this.#abort();
    this.#shut();
  }

  #shut(): void {
    if (this.state === 'closing' || this.closed) return;
    this.state = 'closing';
    this.server.tcp.end(this.id);
    // A client that keeps the connection open after "Connection: close" is not waited for.
    if (!this.lost) setTimeout(() => this.destroy(), 1000).unref();
  }

  /** The connection is gone (its CLOSE event): whatever runs for it now answers no one. */
  gone(): void {
    this.closed = true;
    this.lost = true;
    this.#abort();
    this.server.forget(this);
  }

  write(head: string, body: string | Buffer | undefined): void {
    if (this.server.tcp.write(this.id, head, body) > 0 && !this.draining) {
      // The client does not read as fast as we answer: no more requests from it until it does.
      this.draining = true;
      this.drainSince = Date.now();
      this.drainLeft = Infinity;
      this.#flow();
    }
  }

  drained(): void {
    this.draining = false;
    // The keep-alive and request clocks run from when the answer was out, not from when it was queued.
    this.since = Date.now();
    this.#flow();
    if (this.state === 'idle' || this.state === 'reading') this.drive();
  }

  destroy(): void {
    if (!this.closed) this.server.tcp.destroy(this.id);
  }

  #flow(): void {
    const pause = this.full || this.draining;
    if (pause === this.paused || this.closed) return;
    this.paused = pause;
    if (pause) this.server.tcp.pause(this.id);
    else this.server.tcp.resume(this.id);
  }

  /** Hands out every whole request that has arrived, one at a time. */
  drive(): void {
    this.driving = true;
    try {
      this.loop();
    } finally {
      this.driving = false;
    }
  }

  private loop(): void {
    while (this.state !== 'busy' && this.state !== 'closing' && !this.draining && !this.lost) {
      const event = this.parser.next();
      if (event === null) {
        const reading = this.parser.midRequest;
        if (reading && this.state === 'idle') this.since = Date.now();
        this.state = reading ? 'reading' : 'idle';
        if (this.full) {
          this.full = false;
          this.#flow();
        }
        return;
      }
      if (event.kind === 'continue') {
        this.write('HTTP/1.1 100 Continue\r\n\r\n', undefined);
        continue;
      }
      this.state = 'busy';
      if (event.kind === 'error') {
        this.server.refuse(new Http1Response(this, false, false, 1), event.status, event.message, event.tooLarge);
        return;
      }
      const request = event.request;
      this.server.handle(request, new Http1Response(this, request.method === 'HEAD', request.keepAlive && !this.server.closing, request.minor));
    }
  }

  /** The answer to the current request is written; go on with the next, or close. */
  answered(close: boolean): void {
    if (this.state === 'closing' || this.closed) return;
    if (close) {
      this.#shut();
      return;
    }
    this.state = 'idle';
    this.since = Date.now();
    if (this.driving) return;
    if (this.parser.buffered > 0) this.drive();
  }

  /**
   * Called by the server's timer: closes the connection when it has been idle or slow too long.
   * A client that stops reading its answers gets as long as a request may take to arrive.
   */
  check(now: number): void {
    const o = this.server.options;
    if (this.draining) {
      const left = this.server.tcp.pending(this.id);
      if (left < this.drainLeft) {
        this.drainLeft = left;
        this.drainSince = now;
      } else if (now - this.drainSince > o.requestTimeoutMs) this.destroy();
    } else if (this.state === 'idle' && now - this.since > o.keepAliveTimeoutMs) this.destroy();
    else if (this.state === 'reading') {
      const limit = this.parser.headersDone ? o.requestTimeoutMs : Math.min(o.headersTimeoutMs, o.requestTimeoutMs);
      if (now - this.since > limit) {
        this.state = 'busy';
        this.server.refuse(new Http1Response(this, false, false, 1), 408, `the request did not arrive within ${limit} ms`, undefined);
      }
    }
  }
}

export class Http1Server {
  readonly tcp: TcpServer;
  readonly #connections = new Map<number, Connection>();
  #timer: NodeJS.Timeout | undefined;
  #address: Http1Address | undefined;
  #listening = false;
  /** Where DATA events point (see NetEvent). */
  #slab: Buffer = Buffer.alloc(0);
  /** close()'s callback, run once the last connection has closed. */
  #onClosed: (() => void) | undefined;
  /** Set by close(): answers from now on end their connections. */
  closing = false;

  constructor(
    readonly options: Http1Options,
    private readonly handler: (req: Http1Request, res: Http1Response) => void,
    private readonly refusal: RefusalHandler,
  ) {
    this.tcp = createTcpServer((kind, id, value, length) => this.#event(kind, id, value, length));
  }

  #event(kind: number, id: number, value: Buffer | number | undefined, length: number): void {
    if (kind === NetEvent.DATA) {
      const at = value as number;
      this.#connections.get(id)?.received(this.#slab.subarray(at, at + length));
      return;
    }
    if (kind === NetEvent.SLAB) {
      this.#slab = value as Buffer;
      return;
    }
    if (kind === NetEvent.CONNECTION) {
      this.#connections.set(id, new Connection(id, this));
      this.#timer ??= this.#startTimer();
      return;
    }
    const connection = this.#connections.get(id);
    if (connection === undefined) return;
    if (kind === NetEvent.DRAIN) connection.drained();
    else if (kind === NetEvent.END) connection.ended();
    else if (kind === NetEvent.CLOSE) connection.gone();
  }

  #startTimer(): NodeJS.Timeout {
    const o = this.options;
    const period = Math.max(50, Math.min(1000, Math.min(o.keepAliveTimeoutMs, o.headersTimeoutMs, o.requestTimeoutMs) / 4));
    const timer = setInterval(() => {
      const now = Date.now();
      for (const c of this.#connections.values()) c.check(now);
    }, period);
    timer.unref();
    return timer;
  }

  handle(req: Http1Request, res: Http1Response): void {
    try {
      this.handler(req, res);
    } catch {
      // The handler answers its own errors; one that escaped leaves nothing to say but a 500.
      if (!res.headersSent) res.send(500, ['Content-Type', 'text/plain'], 'internal server error', true);
    }
  }

  refuse(res: Http1Response, status: number, message: string, tooLarge: number | undefined): void {
    this.refusal(res, status, message, tooLarge);
    if (!res.headersSent) res.send(status, [], '', true);
  }

  forget(connection: Connection): void {
    this.#connections.delete(connection.id);
    if (this.#connections.size > 0) return;
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    if (this.#onClosed !== undefined && !this.#listening) {
      const done = this.#onClosed;
      this.#onClosed = undefined;
      done();
    }
  }

  /** Resolves once listening; a host name is looked up first. Rejects with the socket error (EADDRINUSE, EACCES...). */
  async listen(port: number, host: string): Promise<void> {
    const family = isIP(host);
    const address = family !== 0 ? host : (await lookup(host)).address;
    let bound: number;
    try {
      bound = this.tcp.listen(address, port, 511);
    } catch (err) {
      throw listenError(err);
    }
    this.#listening = true;
    this.#address = { address, family: isIP(address) === 6 ? 'IPv6' : 'IPv4', port: bound };
  }

  address(): Http1Address {
    if (this.#address === undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, 'the HTTP server is not listening');
    return this.#address;
  }

  /** Stops accepting connections; `done` runs once every connection has closed. */
  close(done: () => void): void {
    this.closing = true;
    if (this.#listening) this.tcp.close();
    this.#listening = false;
    if (this.#connections.size === 0) setImmediate(done);
    else this.#onClosed = done;
  }

  /** Closes connections that carry no request now. */
  closeIdleConnections(): void {
    for (const c of this.#connections.values()) if (c.state === 'idle') c.destroy();
  }

  closeAllConnections(): void {
    for (const c of this.#connections.values()) c.destroy();
  }
}
