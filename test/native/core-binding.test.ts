import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCoreBinding } from '../../src/native/core-binding.js';
import { ErrorCode, isCaphostError } from '../../src/errors.js';

const core = loadCoreBinding();
const fixture = fileURLToPath(new URL('../fixtures/core-child.js', import.meta.url));

interface ChildRun {
  code: number | null;
  report: Record<string, unknown>;
}

/** Runs the fixture in `mode`; `fd`, when given, becomes the child's fd 3. */
function runChild(mode: string, args: string[] = [], fd?: number, onSpawn?: () => void): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, mode, ...args], {
      stdio: fd === undefined ? ['ignore', 'pipe', 'inherit'] : ['ignore', 'pipe', 'inherit', fd],
    });
    let out = '';
    if (child.stdout === null) throw new Error('child stdout should be a pipe');
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('spawn', () => onSpawn?.());
    child.once('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve({ code, report: last === '' ? {} : (JSON.parse(last) as Record<string, unknown>) });
      } catch (err) {
        reject(new Error(`child printed no JSON (exit ${code}): ${out}`, { cause: err }));
      }
    });
  });
}

function assertCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isCaphostError(err, code), `expected CaphostError ${code}, got ${String(err)}`);
    return true;
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wakes until someone was actually parked on the word, proving the wait/wake pairing. */
async function wakeOneWaiter(buffer: ArrayBuffer, byteOffset: number): Promise<number> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const woken = core.futexWake(buffer, byteOffset, 1);
    if (woken > 0) return woken;
    await sleep(2);
  }
  return 0;
}

test('shared memory: writes through one view are read through another', () => {
  const { fd, buffer } = core.createSharedMemory(4096, 'rw-test');
  try {
    assert.ok(Number.isInteger(fd) && fd > 2);
    assert.equal(buffer.byteLength, 4096);
    const words = new Int32Array(buffer);
    Atomics.store(words, 10, 0x12345678);
    assert.equal(Atomics.load(new Int32Array(buffer), 10), 0x12345678);
    new Uint8Array(buffer).set([1, 2, 3], 100);
    assert.deepEqual([...new Uint8Array(buffer, 100, 3)], [1, 2, 3]);
  } finally {
    core.closeFd(fd);
  }
});

test('mapping the same fd twice shows the same bytes', () => {
  const { fd, buffer } = core.createSharedMemory(8192);
  try {
    const second = new Uint32Array(core.mapSharedMemory(fd, 8192));
    const first = new Uint32Array(buffer);
    first[2047] = 0xdeadbeef;
    assert.equal(second[2047], 0xdeadbeef);
    second[0] = 42;
    assert.equal(first[0], 42);
    assertCode(() => core.mapSharedMemory(fd, 8193), ErrorCode.INVALID_ARGUMENT);
  } finally {
    core.closeFd(fd);
  }
});

test('closeFd and clearCloexec report bad fds as NATIVE_ERROR', () => {
  const { fd } = core.createSharedMemory(64);
  core.clearCloexec(fd);
  core.closeFd(fd);
  assertCode(() => core.closeFd(fd), ErrorCode.NATIVE_ERROR);
  assertCode(() => core.clearCloexec(fd), ErrorCode.NATIVE_ERROR);
});

test('a child maps the inherited fd 3 and the parent sees its writes', async () => {
  const { fd, buffer } = core.createSharedMemory(256);
  try {
    const run = await runChild('shm-write', ['256'], fd);
    assert.equal(run.code, 0);
    assert.equal(run.report.wrote, 64);
    const words = new Int32Array(buffer);
    for (let i = 0; i < 64; i++) assert.equal(Atomics.load(words, i), i * 7 + 1);
  } finally {
    core.closeFd(fd);
  }
});

test("futexWait returns 'not-equal' and 'timed-out'", () => {
  const { fd, buffer } = core.createSharedMemory(64);
  try {
    Atomics.store(new Int32Array(buffer), 2, 7);
    assert.equal(core.futexWait(buffer, 8, 6, 1000), 'not-equal');
    const started = performance.now();
    assert.equal(core.futexWait(buffer, 8, 7, 30), 'timed-out');
    assert.ok(performance.now() - started >= 25, 'the wait should last about its timeout');
    assert.equal(core.futexWait(buffer, 8, 7, 0), 'timed-out');
    // A view's byteOffset is relative to the view: word 2 of the buffer is word 0 here.
    assert.equal(core.futexWait(new Int32Array(buffer, 8), 0, 6, 0), 'not-equal');
    assert.equal(core.futexWake(buffer, 8), 0);
  } finally {
    core.closeFd(fd);
  }
});

test('a waiter in another process is woken by futexWake', async () => {
  const { fd, buffer } = core.createSharedMemory(64);
  try {
    const words = new Int32Array(buffer);
    const child = runChild('futex-wait', ['64'], fd);
    // Wait (without blocking this loop) for the child to announce it is about to park.
    while (Atomics.load(words, 1) === 0) await core.futexWaitAsync(buffer, 4, 0, 50);
    assert.equal(await wakeOneWaiter(buffer, 0), 1);
    const run = await child;
    assert.equal(run.code, 0);
    assert.equal(run.report.result, 'ok');
  } finally {
    core.closeFd(fd);
  }
});

test('futexWaitAsync does not block the event loop', async () => {
  const { fd, buffer } = core.createSharedMemory(64);
  try {
    let immediates = 0;
    let running = true;
    const spin = (): void => {
      immediates++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const result = await core.futexWaitAsync(buffer, 0, 0, 100);
    running = false;
    assert.equal(result, 'timed-out');
    assert.ok(immediates > 5, `setImmediate ran ${immediates} times during the wait`);

    const pending = core.futexWaitAsync(new Int32Array(buffer), 4, 0);
    assert.equal(await wakeOneWaiter(buffer, 4), 1);
    assert.equal(await pending, 'ok');
    assert.equal(await core.futexWaitAsync(buffer, 4, 1, 1000), 'not-equal');
  } finally {
    core.closeFd(fd);
  }
});

test('invalid arguments are CaphostErrors with code INVALID_ARGUMENT', async () => {
  const { fd, buffer } = core.createSharedMemory(64);
  try {
    assertCode(() => core.futexWait(buffer, 2, 0, 0), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.futexWait(buffer, 64, 0, 0), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.futexWait(buffer, -4, 0, 0), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.futexWait(new Int32Array(buffer, 60), 4, 0, 0), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.futexWait(buffer, 0, 0, -1), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.futexWake(buffer, 1.5), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.futexWait({} as ArrayBuffer, 0, 0, 0), ErrorCode.INVALID_ARGUMENT);
    await assert.rejects(core.futexWaitAsync(buffer, 68, 0, 0), (err) => isCaphostError(err, ErrorCode.INVALID_ARGUMENT));
    assertCode(() => core.createSharedMemory(0), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.createSharedMemory(1.5), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.mapSharedMemory(-1, 64), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.installSeccompFilter(new Uint8Array(7)), ErrorCode.INVALID_ARGUMENT);
    assertCode(() => core.installSeccompFilter(new Uint8Array(0)), ErrorCode.INVALID_ARGUMENT);
  } finally {
    core.closeFd(fd);
  }
});

test('probes report what this machine supports', (t) => {
  const seccomp = core.seccompSupport();
  assert.equal(typeof seccomp.filter, 'boolean');
  assert.equal(typeof seccomp.tsync, 'boolean');
  assert.equal(seccomp.mode, 0, 'the test runner itself must not be filtered');
  const abi = core.landlockAbiVersion();
  assert.ok(Number.isInteger(abi) && abi >= 0);
  const cpu = core.cpuFeatures();
  for (const key of ['avx2', 'fma', 'avx512f', 'neon'] as const) assert.equal(typeof cpu[key], 'boolean');
  t.diagnostic(`seccomp ${JSON.stringify(seccomp)}; landlock ABI ${abi}; cpu ${JSON.stringify(cpu)}`);
  if (process.platform === 'linux' && process.arch === 'x64') assert.equal(cpu.neon, false);
  if (process.arch === 'arm64') assert.equal(cpu.neon, true);
});

test('installSeccompFilter (in a child) reaches threads started before it (TSYNC)', async (t) => {
  const support = core.seccompSupport();
  if (!support.filter || !support.tsync || !['x64', 'arm64'].includes(process.arch)) {
    t.skip(`seccomp filter/TSYNC unavailable here (${JSON.stringify(support)}, ${process.arch})`);
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'caphost-seccomp-'));
  try {
    const run = await runChild('seccomp', [scratch]);
    assert.equal(run.code, 0);
    assert.deepEqual(run.report, {
      mode: 2,
      mainMkdir: 'EPERM',
      workerMkdir: 'EPERM',
      asyncMkdir: 'EPERM',
      writeStillAllowed: 'ok',
    });
    assert.equal(existsSync(join(scratch, 'worker-dir')), false);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('landlockRestrict (in a child) confines every thread to its paths', async (t) => {
  const abi = core.landlockAbiVersion();
  if (abi === 0) {
    t.skip('Landlock unavailable: kernel < 5.13 or landlock not in lsm=; landlockAbiVersion() is 0');
    return;
  }
  const base = mkdtempSync(join(tmpdir(), 'caphost-landlock-'));
  for (const dir of ['ro', 'rw', 'secret']) mkdirSync(join(base, dir));
  writeFileSync(join(base, 'ro', 'file.txt'), 'readable');
  writeFileSync(join(base, 'secret', 'file.txt'), 'hidden');
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const run = await runChild('landlock', [base, String(port)]);
    t.diagnostic(`landlock ABI ${abi}: ${JSON.stringify(run.report)}`);
    assert.equal(run.code, 0);
    const result = run.report.result as { abi: number; scoped: number; skipped: string[]; threads: number; unrestrictedThreads: unknown[] };
    assert.equal(result.abi, abi);
    // ABI 6: signals and abstract unix sockets are scoped to the domain (bit 1 | bit 0).
    assert.equal(result.scoped, abi >= 6 ? 3 : 0);
    assert.deepEqual(result.skipped, [join(base, 'missing')]);
    assert.ok(result.threads > 1, 'other threads should have been restricted too');
    assert.equal(run.report.readRo, 'ok');
    assert.equal(run.report.writeRo, 'EACCES');
    assert.equal(run.report.writeRw, 'ok');
    assert.equal(run.report.readSecret, 'EACCES');
    assert.equal(run.report.readSecretAsync, 'EACCES', 'libuv pool threads must be confined too');
    assert.equal(run.report.writeRoAsync, 'EACCES');
    assert.equal(run.report.workerReadSecret, 'EACCES', 'a worker_thread started earlier must be confined');
    assert.equal(run.report.tcp, abi >= 4 ? 'EACCES' : 'not-tested');
  } finally {
    server.close();
    rmSync(base, { recursive: true, force: true });
  }
});

test('yieldCpu gives the CPU up and comes back (sched_yield), in microseconds when nothing else waits', () => {
  const start = performance.now();
  for (let i = 0; i < 1000; i++) assert.equal(core.yieldCpu(), undefined);
  const usEach = ((performance.now() - start) * 1000) / 1000;
  assert.ok(usEach < 1000, `${usEach} µs per yield`);
});
