/**
 * A minimal HTTP/1.1 keep-alive client for the load side of scope `http`: one request outstanding
 * per connection, the request pre-serialised, responses framed by Content-Length only. node:http's
 * own client costs more per request than the servers under test, which would make both look alike;
 * this one keeps the client's share small, like wrk. Both servers are driven by the same client.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface RawResponse {
  status: number;
  headers: string;
  body: Buffer;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export class RawConnection {
  private buf: Buffer | null = null;
  private resolve: ((r: RawResponse) => void) | null = null;
  private reject: ((e: Error) => void) | null = null;
  private failure: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error): void => {
      this.failure ??= err;
      this.reject?.(err);
      this.resolve = this.reject = null;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  static async open(host: string, port: number): Promise<RawConnection> {
    const socket = connect({ host, port, noDelay: true });
    await once(socket, 'connect');
    return new RawConnection(socket);
  }

  request(bytes: Buffer): Promise<RawResponse> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.resolve !== null) return Promise.reject(new Error('one request at a time per connection'));
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.socket.write(bytes);
    });
  }

  private onData(chunk: Buffer): void {
    const buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    const end = buf.indexOf(HEADER_END);
    if (end < 0) {
      this.buf = buf;
      return;
    }
    const head = buf.toString('latin1', 0, end);
    const at = head.search(/\r\ncontent-length:/i);
    if (at < 0) throw new Error(`response without Content-Length: ${head}`);
    const length = parseInt(head.slice(head.indexOf(':', at) + 1), 10);
    const total = end + 4 + length;
    if (buf.length < total) {
      this.buf = buf;
      return;
    }
    this.buf = buf.length > total ? buf.subarray(total) : null;
    const resolve = this.resolve;
    this.resolve = this.reject = null;
    resolve?.({ status: parseInt(head.slice(9, 12), 10), headers: head, body: buf.subarray(end + 4, total) });
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.destroy();
  }
}

/** The bytes of one POST with a body, ready to write again and again. */
export function postBytes(host: string, port: number, path: string, body: Buffer, headers: Record<string, string> = {}): Buffer {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\n${extra}Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
