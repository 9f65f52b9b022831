import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate as NodeX509, createPrivateKey } from 'node:crypto';
import { CaphostError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { BACKDATE_MS, CertificateAuthority, type KeyAndCertificate, ensurePrivateFolder, writePrivateFile } from './certificate-authority.js';

export const NODE_KEY_FILE = 'node.key';
export const NODE_CERT_FILE = 'node.crt';
export const WORKER_CA_KEY_FILE = 'worker-ca.key';
export const WORKER_CA_CERT_FILE = 'worker-ca.crt';

/** The certificate a node presents now. */
export interface NodeCertificate extends KeyAndCertificate {
  readonly serial: string;
  readonly notAfter: Date;
  /** When it was issued (its notBefore is set a little earlier, for clock skew). */
  readonly issuedAt: Date;
}

export interface NodeIdentityOptions {
  /** The node's name, carried in its certificate as `caphost://node/<name>`. */
  readonly node: string;
  readonly clusterCa: CertificateAuthority;
  /** Folder for the node's key and certificates (0700; files 0600). */
  readonly stateDir: string;
  /** Lifetime of the node certificates this controller issues itself; renewed at two thirds of it. */
  readonly ttlMs: number;
  readonly log: Logger;
}

/** Lifetime of worker certificates and of the controller's own worker CA. */
const WORKER_CERT_TTL_MS = 60 * 60_000;
const WORKER_CA_TTL_MS = 365 * 24 * 60 * 60_000;
/** setTimeout's limit; a longer wait is taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A controller's identity: its node key and certificate in its state folder, signed by the
 * cluster CA and renewed before expiry (when the CA key is at hand), and its own worker CA, which
 * issues short-lived certificates to its workers. Worker certificates chain to the worker CA only,
 * never to the cluster CA, so a worker can never pass for a node.
 */
export class NodeIdentity {
  #current: NodeCertificate;
  #timer: NodeJS.Timeout | undefined;
  #rotating: Promise<NodeCertificate> | undefined;
  #workerCa: CertificateAuthority | undefined;
  #closed = false;
  readonly #listeners = new Set<(cert: NodeCertificate) => void>();

  private constructor(
    readonly options: NodeIdentityOptions,
    current: NodeCertificate,
  ) {
    this.#current = current;
  }

  /** Reuses the certificate in the state folder while it has a third of its life left; otherwise issues one. */
  static async open(options: NodeIdentityOptions): Promise<NodeIdentity> {
    await ensurePrivateFolder(options.stateDir);
    const stored = await readStored(options);
    if (stored !== undefined) {
      const identity = new NodeIdentity(options, stored);
      identity.#schedule();
      return identity;
    }
    if (!options.clusterCa.canIssue) {
      throw new CaphostError(
        ErrorCode.INVALID_ARGUMENT,
        `node "${options.node}" has no valid certificate in ${options.stateDir} and the cluster CA key is not available to issue one: put ca.key beside ca.crt, or issue one with \`npx caphost ca issue --node ${options.node} --out ${options.stateDir}\``,
      );
    }
    const identity = new NodeIdentity(options, await issueNode(options));
    identity.#schedule();
    return identity;
  }

  get current(): NodeCertificate {
    return this.#current;
  }

  /** Called with each new certificate once it is in the state folder. */
  onRotate(listener: (cert: NodeCertificate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Issues and stores a new node certificate now (rotation does this on its own before expiry). */
  rotate(): Promise<NodeCertificate> {
    this.#rotating ??= (async () => {
      try {
        const next = await issueNode(this.options);
        this.#current = next;
        this.options.log.info(`node certificate renewed`, { node: this.options.node, serial: next.serial, notAfter: next.notAfter.toISOString() });
        for (const listener of this.#listeners) listener(next);
        return next;
      } finally {
        this.#rotating = undefined;
        this.#schedule();
      }
    })();
    return this.#rotating;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    // Two thirds into the certificate's own life, which is shorter than ttlMs when the cluster CA
    // expires first; never sooner than a second from now, so a CA about to expire cannot spin this.
    const { issuedAt, notAfter } = this.#current;
    const renewAt = Math.max(issuedAt.getTime() + ((notAfter.getTime() - issuedAt.getTime()) * 2) / 3, Date.now() + 1000);
    if (!this.options.clusterCa.canIssue) {
      // Only the operator can renew it; say so while there is time.
      const warnAt = renewAt - Date.now();
      this.#timer = setTimeout(() => {
        this.options.log.warn(`node certificate expires at ${this.#current.notAfter.toISOString()} and this controller cannot renew it without the cluster CA key`, { node: this.options.node });
      }, Math.max(0, Math.min(warnAt, MAX_TIMER_MS)));
    } else {
      const wait = renewAt - Date.now();
      this.#timer = setTimeout(() => {
        if (Date.now() < renewAt) return this.#schedule();
        this.rotate().catch((err: unknown) => {
          this.options.log.error(`node certificate renewal failed; retrying in a minute: ${(err as Error).message}`, { node: this.options.node });
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => void this.rotate().catch(() => {}), 60_000);
          this.#timer.unref();
        });
      }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
    }
    this.#timer.unref();
  }

  /** A short-lived certificate for one of this controller's workers, for talking to it over a socket. */
  async issueWorkerCertificate(worker: string, ttlMs = WORKER_CERT_TTL_MS): Promise<KeyAndCertificate & { ca: string; notAfter: Date }> {
    const ca = await this.workerCa();
    const issued = await ca.issue({ name: `${this.options.node}/${worker}`, role: 'worker', ttlMs });
    return { key: issued.key, cert: issued.cert, ca: ca.pem, notAfter: issued.notAfter };
  }

  /** This controller's own CA for its workers: created once in the state folder, never shared. */
  async workerCa(): Promise<CertificateAuthority> {
    if (this.#workerCa !== undefined) return this.#workerCa;
    const dir = this.options.stateDir;
    try {
      const [cert, key] = await Promise.all([readFile(join(dir, WORKER_CA_CERT_FILE), 'utf8'), readFile(join(dir, WORKER_CA_KEY_FILE), 'utf8')]);
      const ca = await CertificateAuthority.fromPem(cert, key);
      if (ca.certificate.notAfter.getTime() - Date.now() > WORKER_CERT_TTL_MS) return (this.#workerCa = ca);
    } catch {
      // Missing or unreadable: make a new one below.
    }
    const { ca, key } = await CertificateAuthority.create(`caphost worker CA of node ${this.options.node}`, WORKER_CA_TTL_MS);
    await writePrivateFile(join(dir, WORKER_CA_KEY_FILE), key);
    await writePrivateFile(join(dir, WORKER_CA_CERT_FILE), ca.pem);
    return (this.#workerCa = ca);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }
}

async function issueNode(options: NodeIdentityOptions): Promise<NodeCertificate> {
  const issuedAt = new Date();
  const issued = await options.clusterCa.issue({ name: options.node, role: 'node', ttlMs: options.ttlMs, hosts: [] });
  if (issued.notAfter.getTime() - issuedAt.getTime() < options.ttlMs * 0.99) {
    options.log.warn(`the cluster CA expires at ${issued.notAfter.toISOString()}, before a full node certificate lifetime: node certificates get shorter until it is renewed`, { node: options.node });
  }
  // The key first: a reader that sees the new certificate must find its key.
  await writePrivateFile(join(options.stateDir, NODE_KEY_FILE), issued.key);
  await writePrivateFile(join(options.stateDir, NODE_CERT_FILE), issued.cert);
  return { ...issued, issuedAt };
}

async function readStored(options: NodeIdentityOptions): Promise<NodeCertificate | undefined> {
  let key: string;
  let cert: string;
  try {
    [key, cert] = await Promise.all([readFile(join(options.stateDir, NODE_KEY_FILE), 'utf8'), readFile(join(options.stateDir, NODE_CERT_FILE), 'utf8')]);
  } catch {
    return undefined;
  }
  const problem = options.clusterCa.verifyCertificate(cert, { node: options.node });
  if (problem !== undefined) {
    options.log.info(`not using the node certificate in ${options.stateDir}: ${problem}`, { node: options.node });
    return undefined;
  }
  const parsed = new NodeX509(cert);
  const notAfter = new Date(parsed.validTo);
  const issuedAt = new Date(Math.min(Date.parse(parsed.validFrom) + BACKDATE_MS, Date.now()));
  // With the CA key at hand, a certificate past two thirds of its life is replaced at once.
  if (options.clusterCa.canIssue && Date.now() > issuedAt.getTime() + ((notAfter.getTime() - issuedAt.getTime()) * 2) / 3) return undefined;
  if (!parsed.checkPrivateKey(createPrivateKey(key))) {
    options.log.warn(`the key in ${options.stateDir} does not match its node certificate; issuing a new pair`, { node: options.node });
    return undefined;
  }
  return { key, cert, serial: parsed.serialNumber.toLowerCase(), notAfter, issuedAt };
}
