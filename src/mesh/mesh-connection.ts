import { type Msg, type NatsConnection, type Subscription, connect, createInbox } from 'nats';
import type { RemoteCall } from './remote-call.js';

export interface ConnectionTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface ConnectionHandlers {
  /** A reply (or a no-responders status) to one of this connection's calls. */
  readonly reply: (connection: MeshConnection, id: number, msg: Msg) => void;
  readonly disconnected: (connection: MeshConnection) => void;
  readonly reconnected: (connection: MeshConnection) => void;
  readonly closed: (connection: MeshConnection, error: Error | undefined) => void;
}

/**
 * One NATS connection of a node, with its own inbox for replies. A node has one, and two for a
 * moment while it changes certificates: the old one finishes what it holds, then closes.
 */
export class MeshConnection {
  /** This connection's calls waiting for a reply, by id. */
  readonly pending = new Map<number, RemoteCall>();
  /** Calls from peers this connection is serving now. */
  served = 0;
  connected = true;
  retiring = false;
  readonly #callSubs: Subscription[] = [];
  readonly #inboxPrefix: string;

  private constructor(
    readonly nc: NatsConnection,
    readonly serial: string,
    handlers: ConnectionHandlers,
  ) {
    const inbox = createInbox();
    this.#inboxPrefix = `${inbox}.`;
    const prefixLength = this.#inboxPrefix.length;
    nc.subscribe(`${inbox}.*`, {
      callback: (_err, msg) => {
        const id = Number(msg.subject.slice(prefixLength));
        handlers.reply(this, id, msg);
      },
    });
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          this.connected = false;
          handlers.disconnected(this);
        } else if (status.type === 'reconnect') {
          this.connected = true;
          handlers.reconnected(this);
        }
      }
    })().catch(() => {});
    void nc.closed().then((err) => {
      this.connected = false;
      handlers.closed(this, err ?? undefined);
    });
  }

  static async open(servers: readonly string[], name: string, tls: ConnectionTls & { serial: string }, options: { reconnectWaitMs: number; timeoutMs: number }, handlers: ConnectionHandlers): Promise<MeshConnection> {
    const nc = await connect({
      servers: [...servers],
      name,
      tls: { ca: tls.ca, cert: tls.cert, key: tls.key },
      timeout: options.timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectWaitMs,
      reconnectJitter: Math.min(100, options.reconnectWaitMs),
      reconnectJitterTLS: Math.min(100, options.reconnectWaitMs),
      waitOnFirstConnect: false,
      noEcho: true,
    });
    return new MeshConnection(nc, tls.serial, handlers);
  }

  replySubject(id: number): string {
    return this.#inboxPrefix + id;
  }

  /** Subscribes a subject that serves calls (dropped first when the connection retires). */
  serveCalls(subject: string, queue: string, callback: (msg: Msg) => void): void {
    this.#callSubs.push(this.nc.subscribe(subject, { queue, callback: (_err, msg) => callback(msg) }));
  }

  subscribe(subject: string, callback: (msg: Msg) => void, queue?: string): void {
    this.nc.subscribe(subject, { ...(queue === undefined ? {} : { queue }), callback: (_err, msg) => callback(msg) });
  }

  /** Stops taking calls on this connection; requests already delivered are still served. */
  async stopServing(): Promise<void> {
    await Promise.all(this.#callSubs.splice(0).map((sub) => sub.drain().catch(() => {})));
  }

  /** Flushes what it has to say (replies included) and closes. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
