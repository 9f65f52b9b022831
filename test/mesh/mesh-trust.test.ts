/**
 * Trust and certificate life on one nats-server (mTLS, random loopback port), with controllers in
 * this process: foreign certificates refused both at the TLS layer and in advertisements, and a
 * node that renews its certificate without dropping a call.
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from 'nats';
import { Controller, type ControllerOptions, type Logger } from '../../src/index.js';
import type { CertificateAuthority } from '../../src/mesh/certificate-authority.js';
import { subjects, wire } from '../../src/mesh/mesh-wire.js';
import { NatsServer, natsServerOrReason } from './nats-server.js';
import { writeClusterCa } from './mesh-processes.js';

const nats = natsServerOrReason();
const worker = { module: new URL('../fixtures/workers/mesh-worker.js', import.meta.url), strategy: 'thread' as const };

/** A logger that keeps what it is told. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { lines, debug: () => {}, info: keep('info'), warn: keep('warn'), error: keep('error') };
}

describe('mesh trust and certificate rotation', { skip: 'reason' in nats ? nats.reason : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'caphost-mesh-trust-'));
  let ca: CertificateAuthority;
  let server: NatsServer;
  const controllers: Controller[] = [];

  const start = async (node: string, options: Partial<ControllerOptions> & { caDir?: string; ttlMs?: number } = {}) => {
    const controller = await Controller.start({
      workers: options.workers ?? [],
      logger: options.logger ?? 'silent',
      mesh: {
        servers: [server.url],
        node,
        heartbeatMs: 200,
        tls: { ca: options.caDir ?? join(dir, 'ca'), stateDir: join(dir, node), ...(options.ttlMs === undefined ? {} : { certificateTtlMs: options.ttlMs }) },
      },
    });
    controllers.push(controller);
    return controller;
  };

  before(async () => {
    ca = await writeClusterCa(join(dir, 'ca'));
    const tls = await ca.issue({ name: 'nats-trust', role: 'server', ttlMs: 3600_000, hosts: ['127.0.0.1', 'localhost'] });
    server = await NatsServer.start((nats as { path: string }).path, { name: 'nats-trust', dir: join(dir, 'nats'), tls: { cert: tls.cert, key: tls.key, ca: ca.pem } });
  });

  after(async () => {
    await Promise.all(controllers.map((c) => c.close({ graceMs: 500 })));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a node with a certificate from another CA is refused by the servers, and the refusal is logged', async () => {
    await writeClusterCa(join(dir, 'foreign-ca'), 'some other CA');
    const logger = recordingLogger();
    const mark = server.log.length;
    await assert.rejects(start('intruder', { caDir: join(dir, 'foreign-ca'), logger }), (err: { code: string; message: string }) => {
      assert.equal(err.code, 'MESH_UNAVAILABLE');
      assert.match(err.message, /certificate/);
      return true;
    });
    assert.ok(logger.lines.some((l) => /^error mesh: node intruder could not join/.test(l)), logger.lines.join('\n'));
    await server.waitForLog(/TLS handshake error/, 5000, mark);
  });

  test("a node refuses a NATS server whose certificate is not from the cluster CA", async () => {
    const other = await writeClusterCa(join(dir, 'other-ca'), 'an unrelated CA');
    assert.ok(other.canIssue);
    const logger = recordingLogger();
    // The node's CA folder is 'other-ca': the server's certificate (cluster CA) means nothing to it.
    await assert.rejects(start('wary', { caDir: join(dir, 'other-ca'), logger }), { code: 'MESH_UNAVAILABLE' });
    assert.ok(logger.lines.some((l) => /could not join/.test(l)));
  });

  test('an advertisement carrying a certificate from another CA is refused and logged; its capabilities are not routed', async () => {
    const logger = recordingLogger();
    const honest = await start('honest', { logger });
    // Mallory holds a valid connection certificate but advertises with a foreign one.
    const connectionCert = await ca.issue({ name: 'mallory', role: 'node', ttlMs: 3600_000 });
    const { CertificateAuthority } = await import('../../src/mesh/certificate-authority.js');
    const { ca: foreign } = await CertificateAuthority.create('forger', 3600_000);
    const forged = await foreign.issue({ name: 'mallory', role: 'node', ttlMs: 3600_000 });
    const nc = await connect({ servers: server.url, tls: { ca: ca.pem, cert: connectionCert.cert, key: connectionCert.key } });
    try {
      const body = wire.advertisement.encode({
        node: 'mallory',
        capabilities: [{ key: 'steal.secrets@1.0', proto: 'syntax = "proto3"; message M { string s = 1; }', input: 'M', output: 'M' }],
        certificate: forged.cert,
        issued_at: Date.now(),
      });
      nc.subscribe(subjects.describe('mallory'), { callback: (_e, msg) => msg.respond(wire.signedAdvertisement.encode({ body, signature: sign('sha256', body, forged.key) })) });
      await nc.flush();
      nc.publish(subjects.heartbeat, wire.heartbeat.encode({ node: 'mallory', load: 0, digest: 'x' }));
      const until = Date.now() + 5000;
      while (honest.stats().mesh?.refused['mallory'] === undefined) {
        assert.ok(Date.now() < until, 'mallory was not refused');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.match(honest.stats().mesh!.refused['mallory']!, /not issued by this cluster's CA/);
      assert.ok(logger.lines.some((l) => /^warn mesh: refused node mallory/.test(l)), logger.lines.join('\n'));
      assert.ok(!honest.capabilities().some((c) => c.name === 'steal.secrets'));
      await assert.rejects(honest.call('steal.secrets@1', { s: 'x' }), { code: 'CAPABILITY_NOT_FOUND' });
    } finally {
      await nc.close();
    }
  });

  test('a node renews its certificate before expiry without dropping a call', async () => {
    // Certificates of 3 s, renewed at 2 s: one rotation happens while calls keep flowing.
    const serving = await start('rotating', { workers: [{ ...worker, replicas: 2 }], ttlMs: 3000 });
    const caller = await start('steady');
    const until = Date.now() + 5000;
    while (!caller.capabilities().some((c) => c.capability === 'mesh.echo@1.0')) {
      assert.ok(Date.now() < until, 'the caller never learnt the serving node');
      await new Promise((r) => setTimeout(r, 20));
    }
    const firstSerial = serving.stats().mesh!.certificate.serial;
    const failures: string[] = [];
    let calls = 0;
    const stopAt = Date.now() + 4000;
    const loop = async () => {
      while (Date.now() < stopAt) {
        try {
          await caller.call('mesh.echo@1', { text: 'tick' }, { deadlineMs: 2000 });
          calls++;
        } catch (err) {
          failures.push(`${(err as { code: string }).code}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all([loop(), loop(), loop(), loop()]);
    assert.deepEqual(failures, []);
    assert.ok(calls > 20, `only ${calls} calls`);
    // The move to the renewed certificate (a second connection, then a drain) may still be under way
    // when a loaded machine ends the loop: give it a few seconds.
    const moveBy = Date.now() + 5000;
    while (serving.stats().mesh!.rotations < 1 && Date.now() < moveBy) await new Promise((r) => setTimeout(r, 50));
    const stats = serving.stats().mesh!;
    assert.notEqual(stats.certificate.serial, firstSerial, 'the certificate was not renewed');
    assert.ok(stats.rotations >= 1, 'the node never moved to its renewed certificate');
    assert.ok((stats.served['steady'] ?? 0) >= calls);
  });
});
