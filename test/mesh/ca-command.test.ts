import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'caphost-cli-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

function caphost(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }));
  });
}

test('caphost ca init writes a CA certificate and a 0600 key, and will not replace them without --force', async () => {
  const out = join(root, 'ca');
  const first = await caphost('ca', 'init', '--out', out, '--name', 'test cluster', '--days', '30');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /cluster CA "CN=test cluster"/);
  assert.equal(statSync(join(out, 'ca.key')).mode & 0o777, 0o600);
  const pem = readFileSync(join(out, 'ca.crt'), 'utf8');
  const cert = new X509Certificate(pem);
  assert.equal(cert.ca, true);
  assert.ok(Date.parse(cert.validTo) - Date.now() <= 30 * 86400_000);
  const again = await caphost('ca', 'init', '--out', out);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds a CA/);
  assert.equal(readFileSync(join(out, 'ca.crt'), 'utf8'), pem);
  const forced = await caphost('ca', 'init', '--out', out, '--force');
  assert.equal(forced.code, 0, forced.stderr);
  assert.notEqual(readFileSync(join(out, 'ca.crt'), 'utf8'), pem);
});

test('caphost ca issue writes node and NATS server certificates signed by the CA', async () => {
  const ca = join(root, 'issue-ca');
  assert.equal((await caphost('ca', 'init', '--out', ca)).code, 0);
  const caCert = new X509Certificate(readFileSync(join(ca, 'ca.crt')));
  const node = await caphost('ca', 'issue', '--ca', ca, '--node', 'alpha', '--out', join(root, 'alpha'));
  assert.equal(node.code, 0, node.stderr);
  const nodeCert = new X509Certificate(readFileSync(join(root, 'alpha', 'node.crt')));
  assert.ok(nodeCert.verify(caCert.publicKey));
  assert.match(nodeCert.subjectAltName ?? '', /URI:caphost:\/\/node\/alpha/);
  assert.equal(statSync(join(root, 'alpha', 'node.key')).mode & 0o777, 0o600);
  const server = await caphost('ca', 'issue', '--ca', ca, '--server', 'nats-1', '--out', join(root, 'srv'), '--host', '127.0.0.1', '--host', 'nats.example');
  assert.equal(server.code, 0, server.stderr);
  const serverCert = new X509Certificate(readFileSync(join(root, 'srv', 'nats-1.crt')));
  assert.ok(serverCert.verify(caCert.publicKey));
  assert.ok(serverCert.checkHost('nats.example'));
  assert.ok(serverCert.checkIP('127.0.0.1'));
});

test('caphost ca explains its usage and refuses bad arguments', async () => {
  const bad = await caphost('ca', 'issue', '--node', 'alpha');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /needs --ca DIR and --out DIR/);
  const name = await caphost('ca', 'issue', '--ca', root, '--node', 'no spaces', '--out', root);
  assert.equal(name.code, 2);
  assert.match(name.stderr, /must be 1 to 64 letters/);
  const unknown = await caphost('nope');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "nope"[\s\S]*ca /);
});
