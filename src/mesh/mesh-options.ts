import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CaphostError, ErrorCode } from '../errors.js';
import { type CapabilityRequest, parseCapabilityRequest } from '../router/capability-ref.js';

export interface MeshTlsOptions {
  /** Folder made by `caphost ca init`: ca.crt, and ca.key when this node issues and renews its own certificate. */
  readonly ca: string;
  /** This node's state folder: its key and certificates (0700; files 0600). */
  readonly stateDir: string;
  /** Lifetime of the node certificates this controller issues itself. Default 24 h; renewed at two thirds. */
  readonly certificateTtlMs?: number;
}

export interface MeshOptions {
  /** NATS server URLs (`tls://host:port`); more are learnt from the cluster. */
  readonly servers: string | readonly string[];
  /** mTLS both ways: the servers must present, and this node presents, a certificate of the cluster CA. */
  readonly tls: MeshTlsOptions;
  /** This node's name in the mesh (letters, digits, _ and -). Default: host name, pid and a random suffix. */
  readonly node?: string;
  /** Heartbeat period; a peer silent for three periods is taken off the routing table. Default 1 000 ms. */
  readonly heartbeatMs?: number;
  /**
   * Capabilities (`name@major` or `name`) this node declares idempotent: a call to one of them is
   * retried on another node when the node running it is lost. Others fail with WORKER_CRASHED.
   */
  readonly idempotent?: readonly string[];
  /** Delay between reconnect attempts after the NATS connection is lost. Default 250 ms. */
  readonly reconnectWaitMs?: number;
  /** How long the first connection may take before start fails with MESH_UNAVAILABLE. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
}

export interface ResolvedMeshOptions {
  readonly servers: readonly string[];
  readonly caDir: string;
  readonly stateDir: string;
  readonly certificateTtlMs: number;
  readonly node: string;
  readonly heartbeatMs: number;
  readonly idempotent: readonly CapabilityRequest[];
  readonly reconnectWaitMs: number;
  readonly connectTimeoutMs: number;
}

export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

function invalid(option: string, expected: string, value: unknown): CaphostError {
  return new CaphostError(ErrorCode.INVALID_ARGUMENT, `options.mesh.${option} must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`, { details: { option: `mesh.${option}` } });
}

function duration(option: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw invalid(option, `an integer number of milliseconds, at least ${min}`, value);
  return value;
}

function defaultNodeName(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'node';
  return `${host}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

export function resolveMeshOptions(options: MeshOptions): ResolvedMeshOptions {
  if (options === null || typeof options !== 'object') throw invalid('', 'an object { servers, tls }', options);
  const servers = typeof options.servers === 'string' ? [options.servers] : options.servers;
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string' && s.length > 0)) {
    throw invalid('servers', 'a NATS URL or a non-empty array of them', options.servers);
  }
  const tls = options.tls;
  if (tls === null || typeof tls !== 'object') throw invalid('tls', 'an object { ca, stateDir } (the mesh always uses mTLS)', tls);
  if (typeof tls.ca !== 'string' || tls.ca.length === 0) throw invalid('tls.ca', 'the folder made by `caphost ca init`', tls.ca);
  if (typeof tls.stateDir !== 'string' || tls.stateDir.length === 0) throw invalid('tls.stateDir', 'a folder for this node\'s key and certificate', tls.stateDir);
  const node = options.node ?? defaultNodeName();
  if (typeof node !== 'string' || !NODE_NAME.test(node)) throw invalid('node', '1 to 64 letters, digits, _ or - (it is part of NATS subjects)', node);
  const idempotent = options.idempotent ?? [];
  if (!Array.isArray(idempotent)) throw invalid('idempotent', 'an array of capabilities ("name@major")', idempotent);
  const ttl = duration('tls.certificateTtlMs', tls.certificateTtlMs, 24 * 3600_000, 1000);
  return {
    servers: [...servers],
    caDir: resolve(tls.ca),
    stateDir: resolve(tls.stateDir),
    certificateTtlMs: ttl,
    node,
    heartbeatMs: duration('heartbeatMs', options.heartbeatMs, 1000, 10),
    idempotent: idempotent.map((text: unknown) => parseCapabilityRequest(text as string)),
    reconnectWaitMs: duration('reconnectWaitMs', options.reconnectWaitMs, 250, 1),
    connectTimeoutMs: duration('connectTimeoutMs', options.connectTimeoutMs, 10_000, 1),
  };
}
