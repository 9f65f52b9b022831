import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { curl, getJson, postJson, waitFor } from './fixtures.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const CONFIG = fileURLToPath(new URL('../fixtures/server/serve.config.js', import.meta.url));
const WORKERS = fileURLToPath(new URL('../fixtures/workers/', import.meta.url));

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exit: Promise<number | null>;
}

async function startCli(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exit = once(child, 'exit').then(([code]) => code as number | null);
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exit.then((code) => reject(new Error(`serve exited with ${code} before listening: ${err}`)));
  });
  return { child, url, stderr: () => err, exit };
}

async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}

test('--help describes every flag', async () => {
  const { code, stdout } = await runCli(['serve', '--help']);
  assert.equal(code, 0);
  for (const flag of ['--config', '--port', '--host', '--grace-ms', '--log-level', '--check', '--help']) assert.ok(stdout.includes(flag), `--help does not mention ${flag}`);
  const top = await runCli(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout + top.stderr, /serve +HTTP inference server/);
  assert.equal((await runCli(['serve', '--bogus'])).code, 2);
  assert.equal((await runCli(['nonsense'])).code, 2);
});

test('caphost serve: curl infer against the CLI, then SIGTERM drains in-flight requests and exits 0', async () => {
  const s = await startCli(['--config', CONFIG, '--port', '0', '--log-level', 'warn']);
  try {
    await waitFor(async () => (await getJson(`${s.url}/v2/health/ready`)).status === 200);
    const request = JSON.stringify({ inputs: [{ name: 'values', shape: [3], datatype: 'FP32', data: [1, 2, 3] }] });
    const res = await curl(['-X', 'POST', '--data-binary', request, `${s.url}/v2/models/scale/versions/1/infer`]);
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body).outputs[0], { name: 'values', datatype: 'FP32', shape: [3], data: [2, 4, 6] });

    const slow = postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'sleep', ms: 1000, value: 'finished' });
    // SIGTERM once the call is in its worker: a request that arrives after it is refused (503).
    await waitFor(async () => /caphost_worker_in_flight\{worker="behave-worker\.js#1\.0"\} 1\n/.test(await (await fetch(`${s.url}/metrics`)).text()));
    s.child.kill('SIGTERM');
    const answered = await slow;
    assert.equal(answered.status, 200);
    assert.equal(answered.body.value, 'finished');
    assert.equal(await s.exit, 0);
    await assert.rejects(fetch(`${s.url}/v2/health/live`));
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('SIGTERM: what does not finish within the grace period fails with CONTROLLER_CLOSED', async () => {
  const s = await startCli(['-c', CONFIG, '-p', '0', '--grace-ms', '150', '--log-level', 'silent']);
  try {
    await waitFor(async () => (await getJson(`${s.url}/v2/health/ready`)).status === 200);
    const stuck = postJson(`${s.url}/caphost/v1/capabilities/test.behave@1`, { mode: 'sleep', ms: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    s.child.kill('SIGTERM');
    const res = await stuck;
    assert.deepEqual([res.status, res.body.code], [503, 'CONTROLLER_CLOSED']);
    assert.equal(await s.exit, 0);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('config errors name the field and the line of the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'caphost-serve-config-'));
  try {
    const write = (name: string, text: string): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    const echo = JSON.stringify(join(WORKERS, 'echo-worker.js'));
    const replicas = write('replicas.config.js', `// a config with a mistake\nexport default {\n  workers: [\n    { module: ${echo} },\n    {\n      module: ${echo},\n      replicas: 0,\n    },\n  ],\n};\n`);
    let r = await runCli(['serve', '--config', replicas]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /replicas\.config\.js:7:7: workers\[1\]\.replicas must be an integer from 1 to 256, got 0/);

    const typo = write('typo.config.js', `export default {\n  workers: [{ module: ${echo} }],\n  server: {\n    port: 8080,\n    prot: 8081,\n  },\n};\n`);
    r = await runCli(['serve', '--config', typo]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /typo\.config\.js:5:5: server\.prot is not a field of server; its fields are port, host,/);

    const model = write('model.config.js', `export default {\n  workers: [{ module: ${echo} }],\n  models: { 'test.echo@1': { name: 'has space' } },\n};\n`);
    r = await runCli(['serve', '--config', model]);
    assert.match(r.stderr, /model\.config\.js:3:\d+: models\["test\.echo@1"\]\.name must use letters/);

    const missing = await runCli(['serve', '--config', join(dir, 'absent.config.js')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read the config file .*absent\.config\.js/);

    const unknownCapability = write('cap.config.js', `export default {\n  workers: [{ module: ${echo} }],\n  server: { port: 0 },\n  models: { 'test.nope@1': {} },\n};\n`);
    r = await runCli(['serve', '--config', unknownCapability, '--log-level', 'silent']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /models\["test\.nope@1"\]: no worker provides capability "test\.nope@1"; capabilities provided: test\.echo@1\.0/);

    const ok = await runCli(['serve', '--config', write('ok.config.js', `export default { workers: [{ module: ${echo} }] };\n`), '--check']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /valid; 1 worker entry; models: every capability/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
