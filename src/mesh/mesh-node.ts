import { createHash, X509Certificate as NodeX509, sign, verify } from 'node:crypto';
import type { Msg } from 'nats';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseCapabilityId } from '../router/capability-ref.js';
import type { CapabilityRoute, RouteGroup } from '../router/capability-registry.js';
import { pickRoute } from '../router/route-table.js';
import { DeadlineTimer } from '../scheduler/deadline-timer.js';
import { type Payload, settlePayload } from '../scheduler/payload.js';
import { CertificateAuthority } from './certificate-authority.js';
import { MeshConnection } from './mesh-connection.js';
import type { ResolvedMeshOptions } from './mesh-options.js';
import { type AdvertisedCapability, type CallError, encodeCallRequest, encodeOutputReply, originField, replyTail, subjects, wire } from './mesh-wire.js';
import { type NodeCertificate, NodeIdentity } from './node-identity.js';
import { FIRST_REMOTE_PROVIDER, type Peer, PeerTable } from './peer-table.js';
import { RemoteAttemptError, RemoteCall, RemoteFailure } from './remote-call.js';

/** What the mesh needs from its controller: its table, its load, and a way to run a call locally. */
export interface MeshHost {
  readonly log: Logger;
  /** The local capabilities to advertise, with their schema sources. */
  capabilities(): readonly AdvertisedCapability[];
  /** Calls queued or running on this node now. */
  load(): number;
  /** Load figure of a local provider (Infinity when it cannot take a call now). */
  localLoad(provider: number): number;
  /**
   * Runs a call on this node's own workers only; settles through `resolve` (the encoded output)
   * or `reject` exactly once, possibly before it returns. Returns what cancels it, while it runs.
   */
  serve(capability: string, input: Uint8Array, deadlineMs: number, resolve: (output: Uint8Array) => void, reject: (error: unknown) => void): (() => void) | undefined;
  /** Adds a peer's capabilities to the routing table under `provider` (throws if a schema does not compile). */
  addPeer(provider: number, capabilities: readonly AdvertisedCapability[]): void;
  removePeer(provider: number): void;
  /** Resolves request text against the current table (local and remote). */
  group(text: string): RouteGroup;
}

export interface MeshPeerStats {
  readonly node: string;
  readonly load: number;
  readonly inFlight: number;
  readonly capabilities: readonly string[];
}

export interface MeshStats {
  readonly node: string;
  readonly connected: boolean;
  readonly certificate: { readonly serial: string; readonly notAfter: string };
  /** Certificate changes this node has made without dropping its connection's calls. */
  readonly rotations: number;
  readonly peers: readonly MeshPeerStats[];
  /** Calls this node served for others, by origin node. */
  readonly served: Readonly<Record<string, number>>;
  /** Calls this node sent to others, by serving node. */
  readonly sent: Readonly<Record<string, number>>;
  /** Times the NATS connection was lost and came back. */
  readonly reconnects: number;
  /** Attempts that were retried on another node (undelivered, or lost and idempotent). */
  readonly retried: number;
  /** Nodes refused because their certificate is not the cluster's, with why. */
  readonly refused: Readonly<Record<string, string>>;
}

const EMPTY = new Uint8Array(0);
const MISSED_HEARTBEATS = 3;
/** After a node's subscriptions move to a new connection, the cluster's servers need a moment to learn of them. */
const INTEREST_SETTLE_MS = 250;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * This controller's place in the mesh: it advertises the local capabilities, learns the peers'
 * (checking that each is signed by a node certificate of the cluster CA), serves peers' calls on
 * local workers, and sends calls the router gives to a remote node, with deadline, cancellation,
 * loss detection and retries of undelivered (or idempotent) calls.
 */
export class MeshNode {
  readonly #options: ResolvedMeshOptions;
  readonly #host: MeshHost;
  readonly #ca: CertificateAuthority;
  readonly #identity: NodeIdentity;
  readonly #peers = new PeerTable();
  /** What cancels each call served for a peer, by `<origin>/<call id>`. */
  readonly #serving = new Map<string, () => void>();
  /** The node field of this node's replies, encoded once. */
  readonly #replyTail: Uint8Array;
  readonly #describing = new Set<string>();
  readonly #servedBy: Record<string, number> = {};
  readonly #sentTo: Record<string, number> = {};
  readonly #refused: Record<string, string> = {};
  readonly #refusedLogged = new Map<string, number>();
  readonly #retiring = new Set<MeshConnection>();
  /** Deadlines of the calls this node sent, all on one timer. */
  readonly #deadlines = new DeadlineTimer<RemoteCall>((call) => {
    if (call.expire()) this.#cancel(call.node, call.id, true);
  });
  /** The origin field of this node's requests, encoded once. */
  readonly #originField: Uint8Array;
  #current!: MeshConnection;
  #advertisement: { digest: string; signed: Uint8Array; serial: string } | undefined;
  #timers: NodeJS.Timeout[] = [];
  /** When the sweep last ran (it runs every half heartbeat; a much later run means this node stalled). */
  #lastSweep = Date.now();
  #nextId = 0;
  #retried = 0;
  #rotations = 0;
  #reconnects = 0;
  #closing: Promise<void> | undefined;
  readonly #loadOf = (provider: number): number => (provider >= FIRST_REMOTE_PROVIDER ? (this.#current.connected ? this.#peers.load(provider) : Infinity) : this.#host.localLoad(provider));

  private constructor(options: ResolvedMeshOptions, host: MeshHost, ca: CertificateAuthority, identity: NodeIdentity) {
    this.#options = options;
    this.#host = host;
    this.#ca = ca;
    this.#identity = identity;
    this.#replyTail = replyTail(options.node);
    this.#originField = originField(options.node);
  }

  /** Opens the node's identity and its NATS connection; fails with MESH_UNAVAILABLE saying why. */
  static async start(options: ResolvedMeshOptions, host: MeshHost): Promise<MeshNode> {
    const ca = await CertificateAuthority.load(options.caDir);
    const identity = await NodeIdentity.open({ node: options.node, clusterCa: ca, stateDir: options.stateDir, ttlMs: options.certificateTtlMs, log: host.log });
    const mesh = new MeshNode(options, host, ca, identity);
    try {
      mesh.#current = await mesh.#open(identity.current);
    } catch (err) {
      identity.close();
      throw mesh.#joinError(err as Error & { code?: string });
    }
    mesh.#startTimers();
    mesh.#current.nc.publish(subjects.hello, wire.presence.encode({ node: options.node }));
    mesh.#heartbeat();
    identity.onRotate((cert) => {
      mesh.#rotate(cert).catch((err: unknown) => host.log.error(`mesh: moving to the renewed certificate failed; the old connection stays: ${(err as Error).message}`, { node: options.node }));
    });
    host.log.info(`mesh: node ${options.node} joined`, { servers: options.servers, capabilities: host.capabilities().map((c) => c.key) });
    return mesh;
  }

  get node(): string {
    return this.#options.node;
  }

  // --- calling -------------------------------------------------------------------------------

  /**
   * Runs a call whose candidates include remote nodes: the router's pick (local first, then the
   * least loaded node), and on an undelivered attempt, or a lost one of an idempotent
   * capability, the next pick over the updated table, within the call's deadline.
   */
  async route(text: string, first: RouteGroup, payload: Payload, deadline: number, deadlineMs: number, signal: AbortSignal | undefined, local: (payload: Payload) => Promise<unknown>): Promise<unknown> {
    let group = first;
    let bytes: Uint8Array | undefined;
    let last: RemoteAttemptError | undefined;
    for (;;) {
      const route = pickRoute(group.candidates, this.#loadOf) as CapabilityRoute | undefined;
      if (route === undefined || !route.remote) {
        if (!group.candidates[0]!.remote) return local(bytes ?? payload);
        throw this.#unavailable(text, last);
      }
      bytes ??= settlePayload(payload);
      let output: Uint8Array;
      try {
        output = await this.#send(route, text, bytes, deadline, deadlineMs, signal);
      } catch (err) {
        if (!(err instanceof RemoteAttemptError)) throw err;
        if (err.failure === RemoteFailure.LOST && !this.#idempotent(route)) {
          throw new CaphostError(err.code, `${err.message}; it may or may not have run. Declare "${route.capability.name}@${route.capability.major}" in mesh.idempotent to have such calls retried on another node`, {
            details: { capability: text, node: err.node },
          });
        }
        last = err;
        this.#retried++;
        try {
          group = this.#host.group(text);
        } catch {
          throw this.#unavailable(text, last);
        }
        continue;
      }
      try {
        return route.schema.output.decode(asBuffer(output), 0, output.length, null, null);
      } catch (err) {
        if (err instanceof CaphostError) throw err;
        // The serving node forwards its worker's bytes as they are: they are read here, once.
        const node = this.#peers.byProvider(route.provider)?.node ?? 'unknown';
        throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `node ${node} answered this "${text}" call with an output that is not a ${route.schema.output.type.name} message: ${(err as Error).message}`, {
          details: { capability: text, node },
        });
      }
    }
  }

  #unavailable(text: string, last: RemoteAttemptError | undefined): CaphostError {
    const why = !this.#current.connected
      ? "this node's connection to the mesh is down (reconnecting)"
      : last !== undefined
        ? `the last node tried, ${last.node}, could not take it (${last.message})`
        : 'no node can take it now';
    return new CaphostError(ErrorCode.CAPABILITY_UNAVAILABLE, `no node can serve "${text}" now: ${why}`, { details: { capability: text, ...(last === undefined ? {} : { node: last.node }) } });
  }

  #idempotent(route: CapabilityRoute): boolean {
    return this.#options.idempotent.some((r) => r.name === route.capability.name && (r.major === undefined || r.major === route.capability.major));
  }

  #send(route: CapabilityRoute, text: string, input: Uint8Array, deadline: number, deadlineMs: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const peer = this.#peers.byProvider(route.provider);
    const connection = this.#current;
    if (peer === undefined || !connection.connected) {
      return Promise.reject(new RemoteAttemptError(RemoteFailure.UNDELIVERED, peer?.node ?? 'unknown', peer === undefined ? 'it left the mesh' : "this node's mesh connection is down", ErrorCode.CAPABILITY_UNAVAILABLE));
    }
    let remaining = 0;
    if (deadline > 0) {
      remaining = deadline - Date.now();
      if (remaining <= 0) {
        return Promise.reject(new CaphostError(ErrorCode.DEADLINE_EXCEEDED, `the deadline of this "${text}" call (${deadlineMs} ms) passed before a node could take it`, { details: { capability: text, state: 'queued' } }));
      }
    }
    if (signal?.aborted) return Promise.reject(new CaphostError(ErrorCode.CANCELLED, `the caller cancelled this "${text}" call`, { details: { capability: text }, cause: signal.reason }));
    this.#nextId = (this.#nextId + 1) >>> 0 || 1;
    const id = this.#nextId;
    const request = encodeCallRequest(text, input, Math.ceil(remaining), id, this.#originField);
    const node = peer.node;
    this.#sentTo[node] = (this.#sentTo[node] ?? 0) + 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      const call = new RemoteCall(id, node, text, remaining > 0 ? deadline : 0, deadlineMs, resolve, reject, (c) => {
        connection.pending.delete(c.id);
        peer.inFlight.delete(c);
      });
      connection.pending.set(id, call);
      peer.inFlight.add(call);
      if (remaining > 0) this.#deadlines.add(call);
      if (signal !== undefined) call.cancelWith(signal, () => this.#cancel(node, id, false));
      connection.nc.publish(subjects.call(node, route.capability.major, route.capability.name), request, { reply: connection.replySubject(id) });
    });
  }

  #cancel(node: string, id: number, deadline: boolean): void {
    if (!this.#current.connected) return;
    this.#current.nc.publish(subjects.cancel(node), wire.cancel.encode({ origin: this.#options.node, call_id: id, deadline }));
  }

  #onReply(connection: MeshConnection, id: number, msg: Msg): void {
    const call = connection.pending.get(id);
    if (call === undefined) return; // settled already (deadline, cancel, loss): a late reply
    if (msg.headers?.code === 503) {
      // Nobody subscribes to that node's subject: it is gone, and the call never ran.
      call.reject(new RemoteAttemptError(RemoteFailure.UNDELIVERED, call.node, `node ${call.node} has no responders`, ErrorCode.CAPABILITY_UNAVAILABLE));
      const peer = this.#peers.get(call.node);
      if (peer !== undefined) this.#dropPeer(peer, 'it has no responders (it stopped)');
      return;
    }
    let reply;
    try {
      reply = wire.callReply.decode(msg.data);
    } catch (err) {
      call.reject(new CaphostError(ErrorCode.HANDLER_ERROR, `node ${call.node} sent a reply to this "${call.capability}" call that could not be read: ${(err as Error).message}`, { details: { capability: call.capability, node: call.node } }));
      return;
    }
    if (reply.error != null && reply.error.code !== '') {
      const error = reply.error;
      if (error.code === ErrorCode.CAPABILITY_NOT_FOUND) {
        call.reject(new RemoteAttemptError(RemoteFailure.UNDELIVERED, call.node, `node ${call.node} no longer provides it`, ErrorCode.CAPABILITY_UNAVAILABLE));
      } else {
        call.reject(errorFromWire(error, call.capability, reply.node || call.node));
      }
      return;
    }
    call.resolve(reply.output ?? EMPTY);
  }

  // --- serving -------------------------------------------------------------------------------

  #onCall(connection: MeshConnection, msg: Msg): void {
    let request;
    try {
      request = wire.callRequest.decode(msg.data);
    } catch (err) {
      msg.respond(wire.callReply.encode({ error: toWire(new CaphostError(ErrorCode.SCHEMA_MISMATCH, `node ${this.#options.node} could not read a call request: ${(err as Error).message}`)), node: this.#options.node }));
      return;
    }
    const origin = request.origin;
    let key: string | undefined;
    let settled = false;
    connection.served++;
    const done = () => {
      settled = true;
      connection.served--;
      if (key !== undefined) this.#serving.delete(key);
    };
    const cancel = this.#host.serve(
      request.capability,
      request.input,
      request.deadline_ms,
      (output) => {
        done();
        msg.respond(encodeOutputReply(output, this.#replyTail));
      },
      (err) => {
        done();
        msg.respond(wire.callReply.encode({ error: toWire(err), node: this.#options.node }));
      },
    );
    // Bookkeeping comes after the call is placed, so it overlaps the worker's wake-up.
    this.#servedBy[origin] = (this.#servedBy[origin] ?? 0) + 1;
    if (!settled && cancel !== undefined) {
      key = `${origin}/${request.call_id}`;
      this.#serving.set(key, cancel);
    }
  }

  #onCancel(msg: Msg): void {
    try {
      const cancel = wire.cancel.decode(msg.data);
      this.#serving.get(`${cancel.origin}/${cancel.call_id}`)?.();
    } catch {
      // A malformed cancel cancels nothing.
    }
  }

  // --- membership ----------------------------------------------------------------------------

  #heartbeat(): void {
    const connection = this.#current;
    if (!connection.connected || this.#closing !== undefined) return;
    connection.nc.publish(subjects.heartbeat, wire.heartbeat.encode({ node: this.#options.node, load: Math.min(this.#host.load(), 0xffffffff), digest: this.#advertise().digest }));
  }

  /** The signed advertisement of this node (rebuilt when its certificate changes). */
  #advertise(): { digest: string; signed: Uint8Array } {
    const cert = this.#identity.current;
    if (this.#advertisement?.serial === cert.serial) return this.#advertisement;
    const capabilities = [...this.#host.capabilities()].sort((a, b) => (a.key < b.key ? -1 : 1));
    const body = wire.advertisement.encode({ node: this.#options.node, capabilities, certificate: cert.cert, issued_at: Date.now() });
    const signature = sign('sha256', body, cert.key);
    const digest = createHash('sha256').update(JSON.stringify(capabilities)).update(cert.serial).digest('hex').slice(0, 32);
    this.#advertisement = { digest, signed: wire.signedAdvertisement.encode({ body, signature }), serial: cert.serial };
    return this.#advertisement;
  }

  #onHeartbeat(msg: Msg): void {
    let beat;
    try {
      beat = wire.heartbeat.decode(msg.data);
    } catch {
      return;
    }
    if (beat.node === this.#options.node) return;
    const peer = this.#peers.get(beat.node);
    if (peer !== undefined && peer.digest === beat.digest) {
      peer.load = beat.load;
      peer.lastSeen = Date.now();
      return;
    }
    void this.#learn(beat.node, beat.load, beat.digest);
  }

  /** Fetches a node's advertisement, checks its certificate and signature, and routes to it. */
  async #learn(node: string, load: number, digest: string): Promise<void> {
    if (this.#describing.has(node) || this.#closing !== undefined) return;
    this.#describing.add(node);
    try {
      const reply = await this.#current.nc.request(subjects.describe(node), EMPTY, { timeout: Math.max(1000, 3 * this.#options.heartbeatMs) });
      const signed = wire.signedAdvertisement.decode(reply.data);
      const ad = wire.advertisement.decode(signed.body);
      const problem =
        ad.node !== node
          ? `it answered for node "${ad.node}"`
          : (this.#ca.verifyCertificate(ad.certificate, { node }) ??
            (verify('sha256', signed.body, new NodeX509(ad.certificate).publicKey, signed.signature) ? undefined : 'its advertisement is not signed by its certificate\'s key'));
      if (problem !== undefined) {
        this.#refuse(node, problem);
        return;
      }
      delete this.#refused[node];
      if (this.#closing !== undefined) return;
      const previous = this.#peers.get(node);
      if (previous !== undefined) {
        this.#peers.delete(previous);
        this.#host.removePeer(previous.provider);
      }
      const peer = this.#peers.add(node, load, digest, ad.capabilities.map((c) => c.key), Date.now());
      try {
        for (const c of ad.capabilities) parseCapabilityId(c.key);
        this.#host.addPeer(peer.provider, ad.capabilities);
      } catch (err) {
        this.#peers.delete(peer);
        this.#host.removePeer(peer.provider);
        this.#host.log.warn(`mesh: not routing to node ${node}: its capabilities do not compile: ${(err as Error).message}`, { node });
        return;
      }
      this.#host.log.info(`mesh: routing to node ${node}`, { node, capabilities: peer.capabilities });
    } catch (err) {
      this.#host.log.debug(`mesh: could not describe node ${node}: ${(err as Error).message}`, { node });
    } finally {
      this.#describing.delete(node);
    }
  }

  #refuse(node: string, why: string): void {
    this.#refused[node] = why;
    const previous = this.#peers.get(node);
    if (previous !== undefined) this.#dropPeer(previous, `its certificate was refused: ${why}`);
    const last = this.#refusedLogged.get(node) ?? 0;
    if (Date.now() - last > 60_000) {
      this.#refusedLogged.set(node, Date.now());
      this.#host.log.warn(`mesh: refused node ${node}: ${why}`, { node, reason: why });
    }
  }

  #dropPeer(peer: Peer, why: string): void {
    if (this.#peers.get(peer.node) !== peer) return;
    this.#peers.delete(peer);
    this.#host.removePeer(peer.provider);
    this.#host.log.info(`mesh: node ${peer.node} left the routing table: ${why}`, { node: peer.node, inFlight: peer.inFlight.size });
    for (const call of [...peer.inFlight]) call.reject(new RemoteAttemptError(RemoteFailure.LOST, peer.node, `node ${peer.node} was lost while it ran this "${call.capability}" call (${why})`));
  }

  #sweep(): void {
    const now = Date.now();
    const last = this.#lastSweep;
    this.#lastSweep = now;
    if (!this.#current.connected) return; // our own silence, not theirs
    if (now - last > this.#options.heartbeatMs) {
      // This node did not run for a while (a long pause, a paused VM): its peers' heartbeats may
      // still wait unread in its socket, or not be sent yet. A fresh period, rather than a verdict.
      this.#peers.touchAll(now);
      return;
    }
    const silentFor = MISSED_HEARTBEATS * this.#options.heartbeatMs;
    for (const peer of this.#peers.silentSince(Date.now() - silentFor)) this.#dropPeer(peer, `no heartbeat for ${silentFor} ms`);
  }

  #startTimers(): void {
    const beat = setInterval(() => this.#heartbeat(), this.#options.heartbeatMs);
    const sweep = setInterval(() => this.#sweep(), Math.max(5, Math.floor(this.#options.heartbeatMs / 2)));
    beat.unref();
    sweep.unref();
    this.#timers = [beat, sweep];
  }

  // --- connections ---------------------------------------------------------------------------

  async #open(cert: NodeCertificate): Promise<MeshConnection> {
    const options = this.#options;
    const connection = await MeshConnection.open(
      options.servers,
      `caphost ${options.node}`,
      { ca: this.#ca.pem, cert: cert.cert, key: cert.key, serial: cert.serial },
      { reconnectWaitMs: options.reconnectWaitMs, timeoutMs: options.connectTimeoutMs },
      {
        reply: (c, id, msg) => this.#onReply(c, id, msg),
        disconnected: (c) => this.#onDisconnect(c),
        reconnected: (c) => this.#onReconnect(c),
        closed: (c, err) => this.#onClosed(c, err),
      },
    );
    connection.subscribe(subjects.heartbeat, (msg) => this.#onHeartbeat(msg));
    connection.subscribe(subjects.hello, (msg) => {
      if (wire.presence.decode(msg.data).node !== options.node) this.#heartbeat();
    });
    connection.subscribe(subjects.bye, (msg) => {
      const peer = this.#peers.get(wire.presence.decode(msg.data).node);
      if (peer !== undefined) this.#dropPeer(peer, 'it left');
    });
    connection.subscribe(subjects.describe(options.node), (msg) => msg.respond(this.#advertise().signed), 'describe');
    connection.subscribe(subjects.cancel(options.node), (msg) => this.#onCancel(msg));
    const served = new Set<string>();
    for (const capability of this.#host.capabilities()) {
      const { name, major } = parseCapabilityId(capability.key);
      if (served.has(`${major}.${name}`)) continue;
      served.add(`${major}.${name}`);
      const onCall = (msg: Msg) => this.#onCall(connection, msg);
      connection.serveCalls(subjects.call(options.node, major, name), subjects.queue(major, name), onCall);
      connection.serveCalls(subjects.anyCall(major, name), subjects.queue(major, name), onCall);
    }
    await connection.nc.flush();
    return connection;
  }

  /** Moves to a connection with the renewed certificate; the old one finishes its calls, then closes. */
  async #rotate(cert: NodeCertificate): Promise<void> {
    if (this.#closing !== undefined) return;
    const next = await this.#open(cert);
    if (this.#closing !== undefined) {
      await next.close();
      return;
    }
    const old = this.#current;
    this.#current = next;
    old.retiring = true;
    this.#retiring.add(old);
    this.#heartbeat();
    await delay(Math.max(INTEREST_SETTLE_MS, this.#options.heartbeatMs));
    await old.stopServing();
    const until = Date.now() + 60_000;
    while ((old.pending.size > 0 || old.served > 0) && Date.now() < until) await delay(10);
    await old.close();
    this.#retiring.delete(old);
    this.#rotations++;
    this.#host.log.info(`mesh: node ${this.#options.node} now presents certificate ${cert.serial}`, { node: this.#options.node });
  }

  #onDisconnect(connection: MeshConnection): void {
    if (this.#closing !== undefined) return;
    this.#host.log.warn(`mesh: connection to NATS lost; reconnecting (calls to other nodes fail fast meanwhile)`, { node: this.#options.node });
    for (const call of [...connection.pending.values()]) {
      call.reject(new RemoteAttemptError(RemoteFailure.LOST, call.node, `this node's mesh connection was lost while node ${call.node} ran this "${call.capability}" call`, ErrorCode.CAPABILITY_UNAVAILABLE));
    }
  }

  #onReconnect(connection: MeshConnection): void {
    if (connection !== this.#current || this.#closing !== undefined) return;
    this.#reconnects++;
    this.#host.log.info(`mesh: reconnected to NATS`, { node: this.#options.node, server: connection.nc.getServer() });
    this.#peers.touchAll(Date.now());
    connection.nc.publish(subjects.hello, wire.presence.encode({ node: this.#options.node }));
    this.#heartbeat();
  }

  #onClosed(connection: MeshConnection, err: Error | undefined): void {
    for (const call of [...connection.pending.values()]) {
      call.reject(new RemoteAttemptError(RemoteFailure.LOST, call.node, `this node's mesh connection closed while node ${call.node} ran this "${call.capability}" call`, ErrorCode.CAPABILITY_UNAVAILABLE));
    }
    if (connection === this.#current && this.#closing === undefined) {
      this.#host.log.error(`mesh: NATS connection closed${err === undefined ? '' : `: ${err.message}`}`, { node: this.#options.node });
    }
  }

  #joinError(err: Error & { code?: string }): CaphostError {
    const servers = this.#options.servers.join(', ');
    const text = `${err.code ?? ''} ${err.message}`;
    let why: string;
    if (/ECONNRESET|EPIPE|certificate (required|unknown)|bad certificate|alert/i.test(text)) {
      why = `the NATS server closed the TLS handshake: it does not accept this node's certificate (issued by "${this.#ca.certificate.subject}"); every node needs a certificate from the CA the servers trust`;
    } else if (/CERT|UNABLE_TO_VERIFY|SELF_SIGNED|ERR_TLS|altnames/i.test(text)) {
      why = `this node refused the NATS server's certificate (${err.message}): it is not from the cluster CA in ${this.#options.caDir}, or does not name the host`;
    } else if (/CONNECTION_REFUSED|ECONNREFUSED/i.test(text)) {
      why = 'no NATS server answers there';
    } else {
      why = err.message;
    }
    this.#host.log.error(`mesh: node ${this.#options.node} could not join the mesh at ${servers}: ${why}`, { node: this.#options.node, code: err.code });
    return new CaphostError(ErrorCode.MESH_UNAVAILABLE, `could not join the mesh at ${servers}: ${why}`, { cause: err, details: { servers: this.#options.servers } });
  }

  // --- stats and close -----------------------------------------------------------------------

  stats(): MeshStats {
    const cert = this.#identity.current;
    return {
      node: this.#options.node,
      connected: this.#current.connected,
      certificate: { serial: cert.serial, notAfter: cert.notAfter.toISOString() },
      rotations: this.#rotations,
      peers: this.#peers.all().map((p) => ({ node: p.node, load: p.load, inFlight: p.inFlight.size, capabilities: p.capabilities })),
      served: { ...this.#servedBy },
      sent: { ...this.#sentTo },
      reconnects: this.#reconnects,
      retried: this.#retried,
      refused: { ...this.#refused },
    };
  }

  /** Stops serving peers, lets calls in flight finish for up to graceMs, says goodbye and closes. */
  close(graceMs: number): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#identity.close();
    const connections = [this.#current, ...this.#retiring];
    await Promise.all(connections.map((c) => c.stopServing()));
    const until = Date.now() + graceMs;
    const busy = () => connections.some((c) => c.pending.size > 0 || c.served > 0);
    while (busy() && Date.now() < until) await delay(2);
    for (const connection of connections) {
      for (const call of [...connection.pending.values()]) {
        call.reject(new CaphostError(ErrorCode.CONTROLLER_CLOSED, `the controller closed before node ${call.node} answered this "${call.capability}" call`, { details: { capability: call.capability, node: call.node } }));
      }
    }
    for (const cancel of this.#serving.values()) cancel();
    this.#deadlines.close();
    if (this.#current.connected) this.#current.nc.publish(subjects.bye, wire.presence.encode({ node: this.#options.node }));
    await Promise.all(connections.map((c) => c.close()));
  }
}

function toWire(err: unknown): CallError {
  if (err instanceof CaphostError) return { code: err.code, message: err.message, details_json: err.details === undefined ? '' : JSON.stringify(err.details) };
  return { code: ErrorCode.HANDLER_ERROR, message: (err as Error)?.message ?? String(err), details_json: '' };
}

function errorFromWire(error: CallError, capability: string, node: string): CaphostError {
  let details: Record<string, unknown> = {};
  try {
    if (error.details_json !== '') details = JSON.parse(error.details_json) as Record<string, unknown>;
  } catch {
    // Unreadable details are left out; code and message still say what happened.
  }
  return new CaphostError(isErrorCode(error.code) ? error.code : ErrorCode.HANDLER_ERROR, error.message, { details: { ...details, capability, node } });
}
