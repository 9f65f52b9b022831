import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CertificateAuthority } from '../../src/mesh/certificate-authority.js';
import { NODE_CERT_FILE, NODE_KEY_FILE, NodeIdentity, WORKER_CA_KEY_FILE } from '../../src/mesh/node-identity.js';
import type { Logger } from '../../src/logger.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const HOUR = 3600_000;
const root = mkdtempSync(join(tmpdir(), 'caphost-ca-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('cluster CA', () => {
  test('issues node certificates that verify against it, name their node, and carry TLS usages both ways', async () => {
    const { ca } = await CertificateAuthority.create('test cluster CA', 24 * HOUR);
    const issued = await ca.issue({ name: 'alpha', role: 'node', ttlMs: HOUR });
    assert.equal(ca.verifyCertificate(issued.cert, { node: 'alpha' }), undefined);
    assert.match(ca.verifyCertificate(issued.cert, { node: 'beta' }) ?? '', /does not name node "beta"/);
    const parsed = new X509Certificate(issued.cert);
    assert.equal(parsed.ca, false);
    assert.ok(parsed.checkPrivateKey((await import('node:crypto')).createPrivateKey(issued.key)));
    assert.match(parsed.subjectAltName ?? '', /URI:caphost:\/\/node\/alpha/);
    assert.deepEqual(parsed.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const lifetime = Date.parse(parsed.validTo) - Date.now();
    assert.ok(lifetime > HOUR - 5000 && lifetime <= HOUR, `lifetime ${lifetime}`);
  });

  test('refuses a certificate from another CA, an expired one, and a CA certificate', async () => {
    const { ca } = await CertificateAuthority.create('ours', 24 * HOUR);
    const { ca: foreign } = await CertificateAuthority.create('theirs', 24 * HOUR);
    const stranger = await foreign.issue({ name: 'alpha', role: 'node', ttlMs: HOUR });
    assert.match(ca.verifyCertificate(stranger.cert) ?? '', /not issued by this cluster's CA/);
    const short = await ca.issue({ name: 'alpha', role: 'node', ttlMs: HOUR });
    assert.match(ca.verifyCertificate(short.cert, { at: new Date(Date.now() + 2 * HOUR) }) ?? '', /expired/);
    assert.match(ca.verifyCertificate(ca.pem) ?? '', /CA certificate/);
    assert.match(ca.verifyCertificate('not a certificate') ?? '', /not a readable X.509 certificate/);
  });

  test('a certificate never outlives its CA, and a CA loaded without its key cannot issue', async () => {
    const { ca, key } = await CertificateAuthority.create('short-lived CA', HOUR);
    const issued = await ca.issue({ name: 'alpha', role: 'node', ttlMs: 100 * HOUR });
    assert.ok(issued.notAfter.getTime() <= ca.certificate.notAfter.getTime());
    const verifier = await CertificateAuthority.fromPem(ca.pem);
    assert.equal(verifier.canIssue, false);
    assert.equal(verifier.verifyCertificate(issued.cert), undefined);
    await assert.rejects(verifier.issue({ name: 'beta', role: 'node', ttlMs: HOUR }), { code: 'INVALID_ARGUMENT' });
    assert.equal((await CertificateAuthority.fromPem(ca.pem, key)).canIssue, true);
    await assert.rejects(CertificateAuthority.fromPem(issued.cert), { code: 'INVALID_ARGUMENT', message: /not a CA certificate/ });
  });
});

describe('node identity', () => {
  test('keeps its key and certificate in a 0700 state folder as 0600 files and reuses them', async () => {
    const { ca } = await CertificateAuthority.create('cluster', 24 * HOUR);
    const stateDir = join(root, 'reuse');
    const first = await NodeIdentity.open({ node: 'alpha', clusterCa: ca, stateDir, ttlMs: HOUR, log: quiet });
    first.close();
    assert.equal(statSync(stateDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(stateDir, NODE_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(join(stateDir, NODE_CERT_FILE)).mode & 0o777, 0o600);
    const second = await NodeIdentity.open({ node: 'alpha', clusterCa: ca, stateDir, ttlMs: HOUR, log: quiet });
    second.close();
    assert.equal(second.current.serial, first.current.serial);
    // Another node's folder, or another cluster's CA: the stored certificate is not taken.
    const { ca: other } = await CertificateAuthority.create('other cluster', 24 * HOUR);
    const moved = await NodeIdentity.open({ node: 'alpha', clusterCa: other, stateDir, ttlMs: HOUR, log: quiet });
    moved.close();
    assert.notEqual(moved.current.serial, first.current.serial);
    assert.equal(other.verifyCertificate(moved.current.cert, { node: 'alpha' }), undefined);
  });

  test('without the CA key and without a stored certificate, opening says how to get one', async () => {
    const { ca } = await CertificateAuthority.create('cluster', 24 * HOUR);
    const verifier = await CertificateAuthority.fromPem(ca.pem);
    await assert.rejects(NodeIdentity.open({ node: 'alpha', clusterCa: verifier, stateDir: join(root, 'nokey'), ttlMs: HOUR, log: quiet }), {
      code: 'INVALID_ARGUMENT',
      message: /caphost ca issue --node alpha/,
    });
  });

  test('renews its certificate at two thirds of its life, before it expires', async () => {
    const { ca } = await CertificateAuthority.create('cluster', 24 * HOUR);
    const identity = await NodeIdentity.open({ node: 'alpha', clusterCa: ca, stateDir: join(root, 'rotate'), ttlMs: 1500, log: quiet });
    try {
      const first = identity.current;
      // The renewal timer does not hold the process open; this one does, and bounds the wait.
      const guard = setTimeout(() => assert.fail('no renewal within 5 s'), 5000);
      const renewed = await new Promise<{ serial: string; notAfter: Date }>((resolve) => identity.onRotate(resolve));
      clearTimeout(guard);
      assert.notEqual(renewed.serial, first.serial);
      assert.ok(Date.now() < first.notAfter.getTime(), 'renewed before the old certificate expired');
      assert.equal(identity.current.serial, renewed.serial);
      assert.equal(ca.verifyCertificate(identity.current.cert, { node: 'alpha' }), undefined);
    } finally {
      identity.close();
    }
  });

  test('a cluster CA that expires before a full lifetime shortens the certificate, and renewal follows its own life, not ttlMs', async () => {
    const { ca } = await CertificateAuthority.create('short cluster', 4000);
    const warnings: string[] = [];
    const log: Logger = { ...quiet, warn: (message) => void warnings.push(message) };
    const identity = await NodeIdentity.open({ node: 'alpha', clusterCa: ca, stateDir: join(root, 'capped'), ttlMs: 24 * HOUR, log });
    try {
      let rotations = 0;
      identity.onRotate(() => rotations++);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(rotations, 0, 'renewed in a loop because the certificate is shorter than ttlMs');
      assert.ok(identity.current.notAfter.getTime() <= ca.certificate.notAfter.getTime());
      assert.match(warnings.join('\n'), /cluster CA expires at/);
    } finally {
      identity.close();
    }
  });

  test('issues short-lived worker certificates from its own worker CA, which the cluster does not trust', async () => {
    const { ca } = await CertificateAuthority.create('cluster', 24 * HOUR);
    const stateDir = join(root, 'workers');
    const identity = await NodeIdentity.open({ node: 'alpha', clusterCa: ca, stateDir, ttlMs: HOUR, log: quiet });
    try {
      const worker = await identity.issueWorkerCertificate('embed#0.0', 60_000);
      assert.equal(statSync(join(stateDir, WORKER_CA_KEY_FILE)).mode & 0o777, 0o600);
      const workerCa = await CertificateAuthority.fromPem(worker.ca);
      assert.equal(workerCa.verifyCertificate(worker.cert), undefined);
      assert.match(ca.verifyCertificate(worker.cert) ?? '', /not issued by this cluster's CA/);
      const parsed = new X509Certificate(worker.cert);
      assert.deepEqual(parsed.keyUsage, ['1.3.6.1.5.5.7.3.2']);
      assert.ok(Date.parse(parsed.validTo) - Date.now() <= 60_000);
      // The same worker CA across calls and restarts of the controller.
      const again = await identity.issueWorkerCertificate('embed#0.1');
      assert.equal(again.ca, worker.ca);
    } finally {
      identity.close();
    }
  });
});
