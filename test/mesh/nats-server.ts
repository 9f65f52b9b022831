import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateAuthority } from '../../src/mesh/certificate-authority.js';

/**
 * Real nats-server processes on random loopback ports, for tests and the mesh bench. Finding the
 * binary: NATS_SERVER, then PATH and /usr/sbin (Debian's package); when it is missing and we run as
 * root, `scripts/ensure-nats-server.sh` installs the Debian package.
 */
export function findNatsServer(): string | undefined {
  const candidates = [process.env['NATS_SERVER'], '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir !== '') candidates.push(join(dir, 'nats-server'));
  return candidates.find((path): path is string => path !== undefined && path !== '' && existsSync(path));
}

let installTried = false;

/** The nats-server binary, installing it once when possible; or why there is none. */
export function natsServerOrReason(): { path: string } | { reason: string } {
  let path = findNatsServer();
  if (path === undefined && !installTried && process.getuid?.() === 0) {
    installTried = true;
    const script = new URL('../../../scripts/ensure-nats-server.sh', import.meta.url);
    try {
      execFileSync('bash', [script.pathname], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
    } catch (err) {
      return { reason: `nats-server is not installed and scripts/ensure-nats-server.sh failed: ${(err as Error).message.split('\n')[0]}` };
    }
    path = findNatsServer();
  }
  if (path === undefined) {
    return { reason: 'nats-server is not installed (Debian: apt-get install nats-server, or run scripts/ensure-nats-server.sh as root; or set NATS_SERVER to its path)' };
  }
  return { path };
}

export interface ServerTls {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface NatsServerOptions {
  readonly name: string;
  readonly dir: string;
  readonly tls: ServerTls;
  /** Route URLs of servers to join (cluster of several). */
  readonly routes?: readonly string[];
  /** Ports to reuse on a restart; -1 (random) otherwise. */
  readonly port?: number;
  readonly clusterPort?: number;
}

/** One nats-server with TLS and verified client certificates, clustered with others when given routes. */
export class NatsServer {
  readonly log: string[] = [];
  port = -1;
  clusterPort = -1;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly binary: string,
    readonly options: NatsServerOptions,
  ) {}

  static async start(binary: string, options: NatsServerOptions): Promise<NatsServer> {
    const server = new NatsServer(binary, options);
    await server.#run(options.port ?? -1, options.clusterPort ?? -1);
    return server;
  }

  get url(): string {
    return `tls://127.0.0.1:${this.port}`;
  }

  get routeUrl(): string {
    return `nats-route://127.0.0.1:${this.clusterPort}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  async #run(port: number, clusterPort: number): Promise<void> {
    const { dir, tls, name, routes = [] } = this.options;
    await mkdir(dir, { recursive: true });
    const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), ca: join(dir, 'ca.crt') };
    await writeFile(files.cert, tls.cert);
    await writeFile(files.key, tls.key, { mode: 0o600 });
    await writeFile(files.ca, tls.ca);
    const tlsBlock = `{ cert_file: "${files.cert}", key_file: "${files.key}", ca_file: "${files.ca}", verify: true, timeout: 2 }`;
    const config = [
      `server_name: ${name}`,
      `listen: "127.0.0.1:${port}"`,
      `tls ${tlsBlock}`,
      `cluster {`,
      `  name: caphost-test`,
      `  listen: "127.0.0.1:${clusterPort}"`,
      `  tls ${tlsBlock}`,
      `  routes: [${routes.map((r) => `"${r}"`).join(', ')}]`,
      `}`,
    ].join('\n');
    const configFile = join(dir, `${name}.conf`);
    await writeFile(configFile, config);
    const child = spawn(this.binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    let buffered = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server ${name} did not start within 10 s:\n${this.log.join('\n')}`)), 10_000);
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          this.log.push(line);
          const client = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(line);
          if (client) this.port = Number(client[1]);
          const route = /Listening for route connections on 127\.0\.0\.1:(\d+)/.exec(line);
          if (route) this.clusterPort = Number(route[1]);
          if (/Server is ready/.test(line)) {
            clearTimeout(timer);
            resolve();
          }
        }
      };
      child.stderr!.on('data', onData);
      child.stdout!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server ${name} exited with ${code}:\n${this.log.join('\n')}`));
      });
    });
    await ready;
  }

  /** Waits until the log shows a line matching `pattern` (from `from` on). */
  async waitForLog(pattern: RegExp, timeoutMs = 10_000, from = 0): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const line = this.log.slice(from).find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (Date.now() > until) throw new Error(`nats-server ${this.options.name}: no log line matching ${pattern} within ${timeoutMs} ms:\n${this.log.slice(-20).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops it (SIGKILL with `hard`, else SIGTERM) and waits for the exit. */
  async stop(hard = false): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await this.#exited;
  }

  /** Starts it again on the same ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#run(this.port, this.clusterPort);
  }
}

/** Two clustered servers with certificates from `ca` (which must hold its key). */
export async function startCluster(binary: string, ca: CertificateAuthority, dir: string): Promise<[NatsServer, NatsServer]> {
  const issue = async (name: string): Promise<ServerTls> => {
    const issued = await ca.issue({ name, role: 'server', ttlMs: 24 * 3600_000, hosts: ['127.0.0.1', 'localhost'] });
    return { cert: issued.cert, key: issued.key, ca: ca.pem };
  };
  const a = await NatsServer.start(binary, { name: 'nats-a', dir, tls: await issue('nats-a') });
  const b = await NatsServer.start(binary, { name: 'nats-b', dir, tls: await issue('nats-b'), routes: [a.routeUrl] });
  await Promise.all([a.waitForLog(/Route connection created|route.*connection created/i), b.waitForLog(/Route connection created|route.*connection created/i)]);
  return [a, b];
}
