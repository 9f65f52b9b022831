/**
 * Detection and planning: a profile whose promise this machine cannot keep fails
 * Controller.start with SANDBOX_UNAVAILABLE naming what is missing (simulated here through the
 * detection hook, which can only take features away); plans grant exactly what they should.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { rejection, start } from '../controller/fixtures.js';
import { BUILTIN_PROFILES } from '../../src/isolation/sandbox/sandbox-profile.js';
import { PACKAGE_ROOT, planSandbox } from '../../src/isolation/sandbox/sandbox-plan.js';
import { detectSandboxSupport, sandboxGaps, sandboxShortfall, type SandboxSupport } from '../../src/isolation/sandbox/sandbox-support.js';
import { parseChildMessage } from '../../src/isolation/control-messages.js';
import { launchCommand } from '../../src/isolation/process-strategy.js';
import { customProfile, processWorker } from './process-fixtures.js';

const linux: SandboxSupport = { platform: 'linux', seccompFilter: true, seccompTsync: true, landlockAbi: 7, sandboxExec: false };
const HOOK = 'CAPHOST_SANDBOX_SIMULATE_MISSING';

async function withSimulated<T>(value: string, body: () => Promise<T>): Promise<T> {
  process.env[HOOK] = value;
  try {
    return await body();
  } finally {
    delete process.env[HOOK];
  }
}

test('shortfalls are named, with the weaker profile to choose', () => {
  const { strict, 'landlock-optional': optional } = BUILTIN_PROFILES;
  assert.equal(sandboxShortfall(strict, linux), undefined);
  assert.match(sandboxShortfall(strict, { ...linux, landlockAbi: 0 })!, /Landlock is not available on this kernel \(ABI 0.*choose sandbox: 'landlock-optional'/);
  assert.match(sandboxShortfall(strict, { ...linux, landlockAbi: 2 })!, /ABI 2 cannot stop truncation.*needs ABI 3/);
  assert.equal(sandboxShortfall(optional, { ...linux, landlockAbi: 0 }), undefined);
  assert.deepEqual(sandboxGaps(optional, { ...linux, landlockAbi: 0 }).length, 1);
  assert.match(sandboxShortfall(optional, { ...linux, seccompTsync: false })!, /TSYNC/);
  assert.match(sandboxShortfall(optional, { ...linux, seccompFilter: false, seccompTsync: false })!, /seccomp-bpf is not available/);
  assert.match(sandboxShortfall(strict, { ...linux, platform: 'win32' })!, /Linux .* and macOS .* only; this is win32/);
  assert.match(sandboxShortfall(strict, { ...linux, platform: 'darwin', sandboxExec: false })!, /sandbox-exec is missing/);
  assert.equal(sandboxShortfall(strict, { ...linux, platform: 'darwin', sandboxExec: true }), undefined);
});

test('the detection hook only takes features away', () => {
  const real = detectSandboxSupport();
  process.env[HOOK] = 'landlock-abi=99,unknown';
  try {
    assert.deepEqual(detectSandboxSupport(), real);
  } finally {
    delete process.env[HOOK];
  }
});

test('Controller.start refuses a profile that needs Landlock where it is missing, before spawning', async () => {
  const err = await withSimulated('landlock', () => rejection(start({ workers: [processWorker('behave-worker')] })));
  assert.equal(err.code, 'SANDBOX_UNAVAILABLE');
  assert.match(err.message, /options\.workers\[0\]\.sandbox: sandbox profile 'strict' cannot be enforced here: Landlock is not available/);
  assert.match(err.message, /choose sandbox: 'landlock-optional'/);
});

test('without seccomp no profile starts, not even a weaker one', async () => {
  const err = await withSimulated('seccomp', () => rejection(start({ workers: [processWorker('behave-worker', { sandbox: 'permissive' })] })));
  assert.equal(err.code, 'SANDBOX_UNAVAILABLE');
  assert.match(err.message, /seccomp-bpf is not available/);
});

test("'landlock-optional' starts without Landlock, seccomp still on", { skip: process.platform !== 'linux' }, async () => {
  const controller = await withSimulated('landlock', () => start({ workers: [processWorker('hostile-worker', { sandbox: 'landlock-optional' })] }));
  try {
    const outcome = await controller.call<{ result: string }>('hostile.try@1', { what: 'exec' });
    assert.equal(outcome.result, 'EPERM', 'seccomp still denies exec');
  } finally {
    await controller.close();
  }
});

test('a plan grants the runtime, the module folder and scratch, and denies TCP where Landlock can', { skip: process.platform !== 'linux' }, () => {
  const plan = planSandbox({
    profile: customProfile('with-data', () => ({ filesystem: { readOnly: ['/srv/models'], readWrite: { scratch: true, extra: [] } } })),
    support: linux,
    scratchDir: '/tmp/caphost-worker-x',
    moduleDir: join(PACKAGE_ROOT, 'dist/test/fixtures/workers'),
    nodeBinary: process.execPath,
    sigusr1Disabled: false,
  });
  assert.ok(plan.landlock);
  const { readOnly, readWrite, denyTcp } = plan.landlock;
  for (const p of [process.execPath, '/usr/lib', join(PACKAGE_ROOT, 'dist'), join(PACKAGE_ROOT, 'package.json'), join(PACKAGE_ROOT, 'dist/test/fixtures/workers'), '/srv/models']) {
    assert.ok(readOnly.includes(p), `${p} is readable`);
  }
  assert.ok(!readOnly.includes(PACKAGE_ROOT), 'not the whole package root (it may hold .git, sources, secrets)');
  assert.ok(!readOnly.some((p) => p === '/proc' || p === '/tmp' || p === '/' || p.startsWith('/dev')));
  assert.deepEqual(readWrite, ['/tmp/caphost-worker-x', '/dev/null', '/dev/zero', '/dev/urandom']);
  assert.equal(denyTcp, true);
  assert.equal(plan.toleratedUnrestrictedThreads, 1);
  assert.ok(Buffer.from(plan.seccomp, 'base64').byteLength % 8 === 0);
  const old = planSandbox({ profile: BUILTIN_PROFILES.strict, support: { ...linux, landlockAbi: 3 }, scratchDir: '/s', moduleDir: '/m/x', nodeBinary: '/n', sigusr1Disabled: true });
  assert.equal(old.landlock?.denyTcp, false, 'ABI 3 has no TCP rules: seccomp alone denies sockets');
  assert.equal(old.toleratedUnrestrictedThreads, 0);
  assert.throws(() => planSandbox({ profile: BUILTIN_PROFILES.strict, support: linux, scratchDir: '/s', moduleDir: '/', nodeBinary: '/n', sigusr1Disabled: true }), /folder of its own/);
});

test('control messages from a process child are checked, not believed', () => {
  assert.deepEqual(parseChildMessage({ type: 'stopped', extra: 1 }), { type: 'stopped' });
  assert.equal(parseChildMessage({ type: 'ready', capabilities: [{ key: 1 }] }), undefined);
  assert.equal(parseChildMessage({ type: 'ready', capabilities: 'all' }), undefined);
  assert.equal(parseChildMessage({ type: 'log', level: 'fatal', message: 'x' }), undefined);
  assert.equal(parseChildMessage({ type: 'log', level: 'info', message: 'x'.repeat(70_000) }), undefined);
  assert.equal(parseChildMessage({ type: 'failed', error: 'nope' }), undefined);
  assert.equal(parseChildMessage(null), undefined);
  assert.equal(parseChildMessage({ type: 'become-root' }), undefined);
  assert.deepEqual(parseChildMessage({ type: 'failed', error: { code: 'X', message: 'm', details: { a: 1 } } }), { type: 'failed', error: { code: 'X', message: 'm' } });
});

test('on macOS the child is launched through sandbox-exec with the profile as SBPL; on Linux it is node itself', () => {
  const paths = { scratchDir: '/tmp/caphost-worker-x', moduleDir: join(PACKAGE_ROOT, 'dist/test/fixtures/workers'), nodeBinary: '/opt/node/bin/node' };
  const mac = launchCommand('darwin', BUILTIN_PROFILES.strict, paths, ['entry.js', '{}']);
  assert.equal(mac.command, '/usr/bin/sandbox-exec');
  assert.equal(mac.argv[0], '-p');
  const sbpl = mac.argv[1]!;
  assert.match(sbpl, /\(deny default\)/);
  assert.match(sbpl, /\(deny network\*\)/);
  assert.match(sbpl, /\(allow file-read\* file-write\*\n {2}\(subpath "\/private\/tmp\/caphost-worker-x"\)\)/);
  // SBPL names /tmp, /var and /etc by their /private targets; the checkout may live under /tmp (CI's does).
  const onMac = (path: string): string => (/^\/(tmp|var|etc)(\/|$)/.test(path) ? `/private${path}` : path);
  assert.ok(sbpl.includes(`(subpath ${JSON.stringify(onMac(join(PACKAGE_ROOT, 'dist')))})`), 'the runtime is readable');
  assert.deepEqual(mac.argv.slice(2), ['/opt/node/bin/node', 'entry.js', '{}']);
  assert.deepEqual(launchCommand('linux', BUILTIN_PROFILES.strict, paths, ['entry.js']), { command: '/opt/node/bin/node', argv: ['entry.js'] });
});
