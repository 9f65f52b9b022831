/**
 * A hostile process worker writes a native addon into its scratch folder, loads it, and repeats
 * the escape attempts from native code with raw syscalls (issue 3, item 5), then segfaults in it
 * (item 6). Either the sandbox refuses to load native code from scratch (the native path is
 * closed), or every attempt fails with EPERM/EACCES; a segfault is a WORKER_CRASHED, the worker
 * restarts, the controller serves on, and no zombie remains. Linux only, and needs g++ and
 * node_api.h to build the addon (the test skips, saying so, without them).
 *
 * Never load the addon outside the sandbox: as root, its mount/ptrace/execve attempts succeed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { Controller } from '../../src/index.js';
import { rejection, start, waitFor } from '../controller/fixtures.js';
import { children, customProfile, processWorker } from './process-fixtures.js';

interface Outcome {
  result: string;
  errno: number;
  detail: string;
}

const linux = process.platform === 'linux';
/** The C source sits in test/fixtures, beside (not in) dist: tsc copies no .c files. */
const source = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'native-hostile', 'hostile.c');
const includeDir = join(dirname(process.execPath), '..', 'include', 'node');

const work = linux ? mkdtempSync(join(tmpdir(), 'caphost-native-')) : '';
let bytes: Buffer | undefined;
let whyNot: string | false = linux ? false : 'needs Linux (seccomp + Landlock)';
if (linux) {
  if (!existsSync(join(includeDir, 'node_api.h'))) whyNot = `node_api.h not found in ${includeDir}`;
  else if (!existsSync(source)) whyNot = `addon source ${source} not found`;
  else {
    const out = join(work, 'hostile.node');
    const cc = spawnSync('g++', ['-shared', '-fPIC', '-O1', `-I${includeDir}`, source, '-o', out], { encoding: 'utf8' });
    if (cc.error) whyNot = `g++ is unavailable (${(cc.error as NodeJS.ErrnoException).code})`;
    else if (cc.status !== 0) whyNot = `g++ failed: ${cc.stderr.slice(0, 500)}`;
    else bytes = readFileSync(out);
  }
}

const errnoName = (n: number): string => {
  if (n === 0) return 'ok';
  if (n < 0) return `killed by signal ${-n}`;
  return Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
};
const { EPERM, EACCES } = constants.errno;

const tryIt = (controller: Controller, what: string, arg = ''): Promise<Outcome> =>
  controller.call<Outcome>('native.try@1', { what, arg, bytes: new Uint8Array(0) }).then(({ result, errno, detail }) => ({ result, errno, detail }));
const load = (controller: Controller): Promise<Outcome> =>
  controller.call<Outcome>('native.try@1', { what: 'load', arg: '', bytes: bytes! }).then(({ result, errno, detail }) => ({ result, errno, detail }));

const zombies = (): number[] => children().filter((c) => c.state === 'Z').map((c) => c.pid);

let loadRefused: string | undefined;
after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('native code a worker writes into scratch and loads cannot leave the sandbox either', { skip: whyNot }, async (t) => {
  const seen: string[] = [];
  const listen = async (host: string): Promise<Server | undefined> => {
    const server = createServer((s) => {
      seen.push(host);
      s.destroy();
    });
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
      return server;
    } catch {
      return undefined;
    }
  };
  const tcp4 = await listen('127.0.0.1');
  const tcp6 = await listen('::1');
  const port = (s: Server | undefined): string => String((s?.address() as { port?: number } | null)?.port ?? 9);
  const outside = join(work, 'outside');
  mkdirSync(outside);
  const secret = join(outside, 'secret.txt');
  writeFileSync(secret, 'the controller’s secret');
  const mountPoint = join(outside, 'mnt');
  mkdirSync(mountPoint);

  const controller = await start({ workers: [processWorker('native-hostile-worker')] });
  try {
    const loaded = await load(controller);
    t.diagnostic(`load from scratch: ${loaded.result} (${loaded.detail})`);
    if (loaded.result !== 'loaded') {
      // The sandbox closed the native path itself: that is the pass, stated as such.
      assert.equal(loaded.result, 'dlopen-refused', `writing into scratch must work: ${loaded.detail}`);
      loadRefused = loaded.detail;
      t.diagnostic('the sandbox refuses to load native code from scratch: the native escape path is closed');
      return;
    }
    const attempts: [string, string, number[]][] = [
      ['tcp4', port(tcp4), [EPERM]],
      ['tcp6', port(tcp6), [EPERM]],
      ['execve', '', [EPERM]],
      ['ptrace', '', [EPERM]],
      ['processVmReadv', '', [EPERM]],
      ['procMem', '', [EACCES]],
      ['ioUring', '', [EPERM]],
      ['bpf', '', [EPERM]],
      ['unshare', '', [EPERM]],
      ['mount', mountPoint, [EPERM]],
      ['readFile', '/etc/shadow', [EACCES]],
      ['readFile', secret, [EACCES]],
      ['writeFile', join(outside, 'planted.txt'), [EACCES]],
      ['writeFile', join(tmpdir(), `caphost-native-planted-${process.pid}.txt`), [EACCES]],
      ['killParent', '', [EPERM]],
      ['keyctl', '', [EPERM]],
      ['perfEventOpen', '', [EPERM]],
      ['userfaultfd', '', [EPERM]],
      ['chmod', secret, [EPERM]],
      // Fork alone is allowed (threads and forks are clone); exec from the forked child is not.
      ['forkExec', '', [EPERM]],
    ];
    const report: string[] = [];
    for (const [what, arg, expected] of attempts) {
      const { errno } = await tryIt(controller, what, arg);
      report.push(`${what}: ${errnoName(errno)}`);
      assert.ok(expected.includes(errno), `${what} ${arg} from native code should fail with ${expected.map(errnoName).join('/')}, got ${errnoName(errno)}`);
    }
    const fork = await tryIt(controller, 'fork');
    report.push(`fork: ${errnoName(fork.errno)}`);
    assert.equal(fork.errno, 0, 'a plain fork (no exec) is allowed by the profile, and its child is reaped');
    // The addon is live (it wrote where it may), so the errors above are the sandbox's.
    assert.equal((await tryIt(controller, 'writeFile', join((await tryIt(controller, 'scratch')).detail, 'native.txt'))).errno, 0);
    t.diagnostic(report.join('; '));

    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(seen, [], 'no server saw the worker');
    assert.equal(readFileSync(secret, 'utf8'), 'the controller’s secret');
    assert.ok(!existsSync(join(outside, 'planted.txt')));
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mountPoint} `), 'nothing was mounted');
    assert.equal(controller.stats().workers[0]!.restarts, 0);
    assert.deepEqual(zombies(), []);
  } finally {
    await controller.close();
    tcp4?.close();
    tcp6?.close();
  }
});

test('a segfault in a native addon the worker loaded is a WORKER_CRASHED; the worker restarts and no zombie remains', { skip: whyNot }, async (t) => {
  if (loadRefused !== undefined) {
    t.skip(`the sandbox refuses to load native code from scratch, so no native code can crash the worker (${loadRefused})`);
    return;
  }
  const controller = await start({ workers: [processWorker('native-hostile-worker')] });
  try {
    assert.equal((await load(controller)).result, 'loaded');
    const err = await rejection(tryIt(controller, 'crash'));
    assert.equal(err.code, 'WORKER_CRASHED');
    assert.match(err.message, /SIGSEGV/);
    await waitFor(() => controller.stats().workers[0]!.state === 'running' && controller.stats().workers[0]!.restarts === 1);
    // The new worker has a fresh scratch and no addon: it serves, and can load it again.
    assert.equal((await tryIt(controller, 'scratch')).result, 'ok');
    assert.equal((await load(controller)).result, 'loaded');
    assert.equal((await tryIt(controller, 'fork')).errno, 0);
    assert.deepEqual(zombies(), [], 'the crashed worker was reaped');
    assert.equal(children().filter((c) => c.state !== 'Z').length, 1, 'one worker child, the restarted one');
  } finally {
    await controller.close();
  }
  await waitFor(() => zombies().length === 0 && children().length === 0);
});

test("under seccomp defaultAction 'kill' a denied raw syscall from native code kills the worker with SIGSYS", { skip: whyNot }, async (t) => {
  if (loadRefused !== undefined) {
    t.skip(`the sandbox refuses to load native code from scratch (${loadRefused})`);
    return;
  }
  const profile = customProfile('strict-kill-native', (p) => ({ seccomp: { ...p.seccomp, defaultAction: 'kill' } }));
  const controller = await start({ workers: [processWorker('native-hostile-worker', { sandbox: profile })] });
  try {
    assert.equal((await load(controller)).result, 'loaded');
    const err = await rejection(tryIt(controller, 'ioUring'));
    assert.equal(err.code, 'WORKER_CRASHED');
    assert.match(err.message, /killed by SIGSYS/);
    await waitFor(() => controller.stats().workers[0]!.state === 'running' && controller.stats().workers[0]!.restarts === 1);
    assert.equal((await tryIt(controller, 'scratch')).result, 'ok');
  } finally {
    await controller.close();
  }
});
