/**
 * The child side on its own: it refuses to run user code when any sandbox step fails, and it
 * leaves when its controller dies, even while parked in a futex wait.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { loadCoreBinding } from '../../src/native/core-binding.js';
import type { ProcessBootData } from '../../src/isolation/control-messages.js';
import { computeLayout, defaultChannelConfig } from '../../src/scheduler/ring-layout.js';
import { BUILTIN_PROFILES } from '../../src/isolation/sandbox/sandbox-profile.js';
import { planSandbox } from '../../src/isolation/sandbox/sandbox-plan.js';
import { detectSandboxSupport } from '../../src/isolation/sandbox/sandbox-support.js';
import { fixture } from './process-fixtures.js';

const linux = process.platform === 'linux';
const entry = fileURLToPath(new URL('../../src/isolation/process-entry.js', import.meta.url));
const core = loadCoreBinding();

/** Runs process-entry with a hand-made plan; resolves with its exit and its control messages. */
function runEntry(change: (boot: ProcessBootData) => ProcessBootData): Promise<{ code: number | null; messages: { type: string; error?: { code: string; message: string } }[] }> {
  const layout = computeLayout(defaultChannelConfig);
  const shm = core.createSharedMemory(layout.totalBytes);
  const moduleUrl = fixture('hostile-worker');
  const base: ProcessBootData = {
    module: moduleUrl.href,
    replica: 0,
    label: 'entry-test',
    channelBytes: layout.totalBytes,
    channelConfig: defaultChannelConfig,
    logLevel: 'silent',
    scratchDir: '/nonexistent',
    sandbox: planSandbox({ profile: BUILTIN_PROFILES.strict, support: detectSandboxSupport(), scratchDir: '/nonexistent', moduleDir: fileURLToPath(new URL('.', moduleUrl)), nodeBinary: process.execPath, sigusr1Disabled: false }),
  };
  const child = spawn(process.execPath, [entry, JSON.stringify(change(base))], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', shm.fd], env: {} });
  core.closeFd(shm.fd);
  const messages: { type: string }[] = [];
  let text = '';
  (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return new Promise((resolve) =>
    child.once('close', (code) => {
      for (const line of text.split('\n').filter(Boolean)) messages.push(JSON.parse(line) as { type: string });
      resolve({ code, messages: messages as never });
    }),
  );
}

test('a Landlock step that falls short ends the child with SANDBOX_UNAVAILABLE, before any user code', { skip: !linux }, async () => {
  // No thread may stay unrestricted: Node 20's SIGUSR1 watchdog always does, so this must fail.
  const run = await runEntry((b) => ({ ...b, sandbox: { ...b.sandbox, toleratedUnrestrictedThreads: 0 } }));
  if (process.allowedNodeEnvironmentFlags.has('--disable-sigusr1')) return; // (a Node with the flag was not given it here)
  assert.equal(run.code, 70);
  assert.deepEqual(run.messages.map((m) => m.type), ['failed']);
  assert.equal(run.messages[0]!.error!.code, 'SANDBOX_UNAVAILABLE');
  assert.match(run.messages[0]!.error!.message, /could not reach 1 thread/);
});

test('a seccomp program the kernel refuses ends the child with SANDBOX_UNAVAILABLE', { skip: !linux }, async () => {
  const bad = Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]).toString('base64'); // an opcode no kernel accepts
  const run = await runEntry((b) => ({ ...b, sandbox: { ...b.sandbox, seccomp: bad } }));
  assert.equal(run.code, 70);
  assert.deepEqual(run.messages.map((m) => m.type), ['failed']);
  assert.equal(run.messages[0]!.error!.code, 'SANDBOX_UNAVAILABLE');
  assert.match(run.messages[0]!.error!.message, /seccomp filter could not be installed/);
});

test('a parked process worker exits when its controller dies', { skip: !linux }, async () => {
  const helper = spawn(process.execPath, [fileURLToPath(fixture('orphan-controller')), 'run'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    helper.stdout.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim())));
    helper.once('exit', (code) => reject(new Error(`helper exited with ${code}`)));
  });
  assert.ok(pid > 0);
  process.kill(pid, 0); // alive now
  helper.kill('SIGKILL');
  const until = Date.now() + 5000;
  let alive = true;
  while (alive && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, 'the orphaned worker left within its parent-check interval');
});
