import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority } from '../../src/mesh/certificate-authority.js';
import type { ControllerStats } from '../../src/index.js';

export interface CallAnswer {
  readonly ok: boolean;
  readonly value?: Record<string, unknown>;
  readonly error?: { code: string; message: string; details?: Record<string, unknown> };
  /** How long the call took, measured in the node. */
  readonly ms: number;
  /** Answers received for this call id (must be 1). */
  answers: number;
}

/** A cluster CA written to `dir` (ca.crt + ca.key), as `caphost ca init` would. */
export async function writeClusterCa(dir: string, name = 'mesh test CA'): Promise<CertificateAuthority> {
  const { ca, key } = await CertificateAuthority.create(name, 30 * 24 * 3600_000);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, CA_CERT_FILE), ca.pem);
  await writeFile(join(dir, CA_KEY_FILE), key, { mode: 0o600 });
  return CertificateAuthority.fromPem(ca.pem, key);
}

export interface NodeProcessOptions {
  readonly node: string;
  readonly servers: readonly string[];
  readonly caDir: string;
  readonly stateDir: string;
  readonly workers: boolean;
  readonly heartbeatMs?: number;
  readonly idempotent?: readonly string[];
}

/** A controller in its own process (test/mesh/fixtures/mesh-node.ts), driven over IPC. */
export class NodeProcess {
  readonly stderr: string[] = [];
  readonly #waiting = new Map<number, (answer: CallAnswer) => void>();
  readonly #answers = new Map<number, CallAnswer>();
  #next = 0;
  readonly exited: Promise<void>;

  private constructor(
    readonly node: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString()));
    child.on('message', (message: { id?: number } & Partial<CallAnswer>) => {
      if (message.id === undefined) return;
      const seen = this.#answers.get(message.id);
      if (seen !== undefined) {
        seen.answers++;
        return;
      }
      const answer = { ...(message as CallAnswer), answers: 1 };
      this.#answers.set(message.id, answer);
      this.#waiting.get(message.id)?.(answer);
      this.#waiting.delete(message.id);
    });
    child.once('exit', () => {
      for (const resolve of this.#waiting.values()) resolve({ ok: false, error: { code: 'PROCESS_EXITED', message: `node ${node} exited` }, ms: 0, answers: 1 });
      this.#waiting.clear();
    });
  }

  static async start(options: NodeProcessOptions): Promise<NodeProcess> {
    const script = fileURLToPath(new URL('./fixtures/mesh-node.js', import.meta.url));
    const config = {
      node: options.node,
      workers: options.workers,
      mesh: {
        servers: options.servers,
        tls: { ca: options.caDir, stateDir: options.stateDir },
        heartbeatMs: options.heartbeatMs ?? 200,
        idempotent: options.idempotent ?? [],
        reconnectWaitMs: 100,
      },
    };
    const child = fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'], serialization: 'advanced' });
    const node = new NodeProcess(options.node, child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${options.node} did not start within 30 s:\n${node.stderr.join('')}`)), 30_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${options.node} exited with ${code} during start:\n${node.stderr.join('')}`));
      });
    });
    return node;
  }

  #request(body: object): Promise<CallAnswer> {
    const id = ++this.#next;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.child.send({ id, ...body });
    });
  }

  call(capability: string, input: object, options: { deadlineMs?: number; cancelAfterMs?: number } = {}): Promise<CallAnswer> {
    return this.#request({ op: 'call', capability, input, ...options });
  }

  /** Blocks the node's event loop for `ms`; resolves when it runs again. */
  async stall(ms: number): Promise<void> {
    await this.#request({ op: 'stall', ms });
  }

  async stats(): Promise<ControllerStats> {
    return (await this.#request({ op: 'stats' })).value as unknown as ControllerStats;
  }

  /** Answers that arrived more than once (never expected). */
  get duplicates(): number {
    return [...this.#answers.values()].filter((a) => a.answers > 1).length;
  }

  kill(): Promise<void> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await Promise.race([this.#request({ op: 'close' }), this.exited]);
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Waits until this node routes to every node in `peers`. */
  async waitForPeers(peers: readonly string[], timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const known = new Set((await this.stats()).mesh?.peers.map((p) => p.node) ?? []);
      if (peers.every((p) => known.has(p))) return;
      if (Date.now() > until) throw new Error(`node ${this.node} knows ${[...known].join(', ') || 'no peers'}, not all of ${peers.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
