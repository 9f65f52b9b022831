import type { RemoteCall } from './remote-call.js';

/** A remote node as this controller knows it. */
export interface Peer {
  readonly node: string;
  /** Its provider id in the routing table (remote ids never collide with local ones). */
  readonly provider: number;
  /** Calls queued or running on it at its last heartbeat. */
  load: number;
  lastSeen: number;
  /** Digest of the advertisement its routes were built from. */
  digest: string;
  /** This controller's calls on it now. */
  readonly inFlight: Set<RemoteCall>;
  readonly capabilities: readonly string[];
}

/** Remote provider ids start here, far above the dense local ones. */
export const FIRST_REMOTE_PROVIDER = 1 << 20;

/** The peers, by node name and by provider id. */
export class PeerTable {
  readonly #byNode = new Map<string, Peer>();
  readonly #byProvider = new Map<number, Peer>();
  #nextProvider = FIRST_REMOTE_PROVIDER;

  get(node: string): Peer | undefined {
    return this.#byNode.get(node);
  }

  byProvider(provider: number): Peer | undefined {
    return this.#byProvider.get(provider);
  }

  /** A new provider id for each advertisement, so a changed node never inherits stale routes. */
  add(node: string, load: number, digest: string, capabilities: readonly string[], now: number): Peer {
    const peer: Peer = { node, provider: this.#nextProvider++, load, lastSeen: now, digest, inFlight: new Set(), capabilities };
    this.#byNode.set(node, peer);
    this.#byProvider.set(peer.provider, peer);
    return peer;
  }

  delete(peer: Peer): void {
    if (this.#byNode.get(peer.node) === peer) this.#byNode.delete(peer.node);
    this.#byProvider.delete(peer.provider);
  }

  /** Load figure for routing: what the node reported plus what this controller has sent it since. */
  load(provider: number): number {
    const peer = this.#byProvider.get(provider);
    return peer === undefined ? Infinity : peer.load + peer.inFlight.size;
  }

  /** Peers not heard from since `before`. */
  silentSince(before: number): Peer[] {
    return [...this.#byNode.values()].filter((peer) => peer.lastSeen < before);
  }

  /** Pretend every peer was heard now (after this node's own connection came back). */
  touchAll(now: number): void {
    for (const peer of this.#byNode.values()) peer.lastSeen = now;
  }

  all(): Peer[] {
    return [...this.#byNode.values()];
  }
}
