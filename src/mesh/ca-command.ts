import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority, ensurePrivateFolder, writePrivateFile } from './certificate-authority.js';
import { NODE_CERT_FILE, NODE_KEY_FILE } from './node-identity.js';

const DAY_MS = 24 * 60 * 60_000;

export const caUsage = `usage:
  caphost ca init [--out DIR] [--name NAME] [--days N] [--force]
      Creates the cluster CA: DIR/ca.crt (give it to every node and NATS server) and
      DIR/ca.key (0600; nodes that hold it issue and renew their own certificates).
      Defaults: --out ./caphost-ca, --name "caphost cluster CA", --days 3650.
  caphost ca issue --ca DIR --node NAME --out STATE_DIR [--days N]
      Issues a node certificate into a controller's state folder (node.key, node.crt),
      for nodes that are not given the CA key. Default --days 30.
  caphost ca issue --ca DIR --server NAME --out DIR [--host H]... [--days N]
      Issues a certificate for a NATS server (TLS server and route client): DIR/NAME.key,
      DIR/NAME.crt. Default --host 127.0.0.1 --host localhost, --days 365.`;

export interface CommandIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

class UsageError extends Error {}

function days(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--days must be a positive number, got "${value}"`);
  return n;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function init(args: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' }, name: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } }, strict: true });
  const out = resolve(values.out ?? 'caphost-ca');
  if (!values.force && ((await exists(join(out, CA_KEY_FILE))) || (await exists(join(out, CA_CERT_FILE))))) {
    io.err(`caphost ca init: ${out} already holds a CA; every node trusts it, so it is not replaced (use --force to replace it)`);
    return 1;
  }
  const { ca, key } = await CertificateAuthority.create(values.name ?? 'caphost cluster CA', days(values.days, 3650) * DAY_MS);
  await ensurePrivateFolder(out);
  await writePrivateFile(join(out, CA_KEY_FILE), key);
  await writePrivateFile(join(out, CA_CERT_FILE), ca.pem);
  io.out(`cluster CA "${ca.certificate.subject}" valid until ${ca.certificate.notAfter.toISOString()}`);
  io.out(`  ${join(out, CA_CERT_FILE)}  (trust anchor: give to every node and NATS server)`);
  io.out(`  ${join(out, CA_KEY_FILE)}  (0600: keep it secret; nodes holding it renew their own certificates)`);
  return 0;
}

async function issue(args: string[], io: CommandIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ca: { type: 'string' }, node: { type: 'string' }, server: { type: 'string' }, out: { type: 'string' }, host: { type: 'string', multiple: true }, days: { type: 'string' } },
    strict: true,
  });
  if (values.ca === undefined || values.out === undefined) throw new UsageError('issue needs --ca DIR and --out DIR');
  if ((values.node === undefined) === (values.server === undefined)) throw new UsageError('issue needs exactly one of --node NAME or --server NAME');
  const name = (values.node ?? values.server)!;
  if (!NAME.test(name)) throw new UsageError(`the name "${name}" must be 1 to 64 letters, digits, _ or - (it is part of NATS subjects)`);
  const ca = await CertificateAuthority.load(resolve(values.ca), { needKey: true });
  const out = resolve(values.out);
  await ensurePrivateFolder(out);
  const role = values.node !== undefined ? 'node' : 'server';
  const issued = await ca.issue({
    name,
    role,
    ttlMs: days(values.days, role === 'node' ? 30 : 365) * DAY_MS,
    hosts: values.host ?? (role === 'server' ? ['127.0.0.1', 'localhost'] : []),
  });
  const [keyFile, certFile] = role === 'node' ? [NODE_KEY_FILE, NODE_CERT_FILE] : [`${name}.key`, `${name}.crt`];
  await writePrivateFile(join(out, keyFile), issued.key);
  await writePrivateFile(join(out, certFile), issued.cert);
  io.out(`${role} certificate for "${name}" valid until ${issued.notAfter.toISOString()}: ${join(out, certFile)}, ${join(out, keyFile)} (0600)`);
  return 0;
}

/** `caphost ca <init|issue> ...`; resolves with the exit status. */
export async function runCaCommand(args: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === 'init') return await init(rest, io);
    if (sub === 'issue') return await issue(rest, io);
    if (sub === undefined || sub === 'help' || sub === '--help') {
      io.out(caUsage);
      return sub === undefined ? 1 : 0;
    }
    throw new UsageError(`unknown subcommand "${sub}"`);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    io.err(`caphost ca: ${(err as Error).message}`);
    if (usage) io.err(caUsage);
    return usage ? 2 : 1;
  }
}
