/**
 * A controller and its worker confined to one CPU (a one-CPU container, or the scheduler packing
 * both threads together) must hand calls to each other by sleeping, not spinning: a spin holds the
 * very CPU the other side needs to answer. Before the rings knew, a call here
 * waited out the spin budget: a median of 162-167 µs with a thread worker and 218-222 µs with a
 * process worker, against 16 and 28-36 µs after (2-vCPU VM, both pinned to one CPU).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('../fixtures/shared-cpu-child.js', import.meta.url));

function firstAllowedCpu(): number {
  const list = /Cpus_allowed_list:\s*(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return list === null ? 0 : Number(list[1]);
}

const skip =
  process.platform !== 'linux'
    ? 'taskset and /proc/self/status are Linux-only'
    : spawnSync('taskset', ['--version']).error !== undefined
      ? 'taskset (util-linux) is not installed, so the test cannot confine the processes to one CPU'
      : false;

// Two thirds of the old median, three times the new one: room for a busy CI machine either way.
const P50_BOUND_US = 110;

for (const strategy of ['thread', 'process'] as const) {
  test(`a ${strategy} worker on the controller's only CPU is not spun against`, { skip, timeout: 60_000 }, () => {
    const cpu = firstAllowedCpu();
    const run = spawnSync('taskset', ['-c', String(cpu), process.execPath, child, strategy], { encoding: 'utf8', timeout: 50_000 });
    assert.equal(run.status, 0, `child failed: ${run.stderr}`);
    const got = JSON.parse(run.stdout.trim().split('\n').pop()!) as { cpus: number; p50Us: number; cpuPerCallUs: number };
    assert.equal(got.cpus, 1, 'taskset should leave the child one CPU');
    assert.ok(
      got.p50Us < P50_BOUND_US,
      `a call took ${got.p50Us.toFixed(1)} µs at the median (${got.cpuPerCallUs.toFixed(1)} µs of controller CPU per call): the hand-off spins against its peer`,
    );
  });
}
