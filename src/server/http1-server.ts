/**
 * The HTTP/1.1 server under `caphost serve`: node:net connections, Http1Parser, keep-alive,
 * pipelined requests answered in order, "100 Continue", and the three timeouts node:http has
 * (headers, whole request, idle keep-alive). A handler gets a whole request (body included) and
 * answers it once through Http1Response. It does only what an inference server needs: no
 * upgrades, no streaming bodies, no response trailers.
 */
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { Http1Parser, type ParsedRequest, type ParserLimits } from './http1-parser.js';

export interface Http1Options extends ParserLimits {
  /** From the first byte of a request to the end of its headers. */
  readonly headersTimeoutMs: number;
  /** From the first byte of a request to the end of its body. */
  readonly requestTimeoutMs: number;
  /** How long a connection may sit idle between requests. */
  readonly keepAliveTimeoutMs: number;
}

/** Its connection is the response's (Http1Response.socket). */
export type Http1Request = ParsedRequest;

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

  get socket(): Socket {
    return this.connection.socket;
  }

  get headersSent(): boolean {
    return this.#sent;
  }

  /** The client is gone: nothing written now would reach it. */
  get destroyed(): boolean {
    return this.connection.socket.destroyed;
  }

  /**
   * Writes status, headers (name, value pairs; Content-Length and Connection are added here) and
   * body in one write. `close` ends the connection after it, as does a client that asked so.
   */
  send(status: number, headers: readonly string[], body: string | Buffer, close = false): void {
    if (this.#sent) throw new Error('caphost: an HTTP response was sent twice');
    this.#sent = true;
    const socket = this.connection.socket;
    if (socket.destroyed) {
      this.connection.answered(true);
      return;
    }
    const keep = this.keepAlive && !close;
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    let head = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Unknown'}\r\n`;
    for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    head += `Content-Length: ${length}\r\n`;
    if (!keep) head += 'Connection: close\r\n\r\n';
    else head += this.minor === 0 ? 'Connection: keep-alive\r\n\r\n' : '\r\n';
    if (this.head || length === 0) socket.write(head, 'latin1');
    else if (typeof body === 'string') socket.write(head + body);
    else {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
    }
    this.connection.answered(!keep);
  }

  /** Drops the connection without an answer (one was half sent, or the client must not wait). */
  destroy(): void {
    this.#sent = true;
    this.connection.socket.destroy();
  }
}

type ConnectionState = 'idle' | 'reading' | 'busy' | 'closing';

class Connection {
  readonly parser: Http1Parser;
  state: ConnectionState = 'idle';
  /** Inside drive(): an answer sent synchronously lets drive's loop go on instead of recursing. */
  private driving = false;
  /** Date.now() when the state (or, while reading, the request) began. */
  since = Date.now();

  constructor(
    readonly socket: Socket,
    private readonly server: Http1Server,
  ) {
    this.parser = new Http1Parser(server.options);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => server.forget(this));
  }

  private received(chunk: Buffer): void {
    if (this.state === 'closing') return;
    if (this.state === 'idle') {
      this.state = 'reading';
      this.since = Date.now();
    }
    this.parser.push(chunk);
    if (this.state !== 'busy') this.drive();
    // A client that pipelines faster than we answer waits for us: stop reading until we catch up.
    else if (this.parser.buffered > this.server.options.maxHeaderBytes + this.server.options.maxBodyBytes) this.socket.pause();
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
    while (this.state !== 'busy' && this.state !== 'closing') {
      const event = this.parser.next();
      if (event === null) {
        const reading = this.parser.midRequest;
        if (reading && this.state === 'idle') this.since = Date.now();
        this.state = reading ? 'reading' : 'idle';
        if (this.socket.isPaused()) this.socket.resume();
        return;
      }
      if (event.kind === 'continue') {
        this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
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
    if (close) {
      this.state = 'closing';
      this.socket.end();
      // A client that keeps the connection open after "Connection: close" is not waited for.
      setTimeout(() => this.socket.destroy(), 1000).unref();
      return;
    }
    this.state = 'idle';
    this.since = Date.now();
    if (this.driving) return;
    if (this.parser.buffered > 0) this.drive();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  /** Called by the server's timer: closes the connection when it has been idle or slow too long. */
  check(now: number): void {
    const o = this.server.options;
    if (this.state === 'idle' && now - this.since > o.keepAliveTimeoutMs) this.socket.destroy();
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
  readonly #net: Server;
  readonly #connections = new Set<Connection>();
  #timer: NodeJS.Timeout | undefined;
  /** Set by close(): answers from now on end their connections. */
  closing = false;

  constructor(
    readonly options: Http1Options,
    private readonly handler: (req: Http1Request, res: Http1Response) => void,
    private readonly refusal: RefusalHandler,
  ) {
    this.#net = createServer({ noDelay: true }, (socket) => {
      this.#connections.add(new Connection(socket, this));
      this.#timer ??= this.#startTimer();
    });
  }

  #startTimer(): NodeJS.Timeout {
    const o = this.options;
    const period = Math.max(50, Math.min(1000, Math.min(o.keepAliveTimeoutMs, o.headersTimeoutMs, o.requestTimeoutMs) / 4));
    const timer = setInterval(() => {
      const now = Date.now();
      for (const c of this.#connections) c.check(now);
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
    this.#connections.delete(connection);
    if (this.#connections.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Resolves once listening; rejects with the socket error (EADDRINUSE, EACCES...). */
  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#net.once('error', onError);
      this.#net.listen(port, host, () => {
        this.#net.off('error', onError);
        resolve();
      });
    });
  }

  address(): AddressInfo {
    return this.#net.address() as AddressInfo;
  }

  /** Stops accepting connections; `done` runs once every connection has closed. */
  close(done: () => void): void {
    this.closing = true;
    this.#net.close(() => done());
  }

  /** Closes connections that carry no request now. */
  closeIdleConnections(): void {
    for (const c of this.#connections) if (c.state === 'idle') c.socket.destroy();
  }

  closeAllConnections(): void {
    for (const c of this.#connections) c.socket.destroy();
  }
}
