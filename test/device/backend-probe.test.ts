import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cudaBuildPaths, probeBackend } from '../../src/device/backend-probe.js';

// The probe runs in a child: these cases need the CUDA build (it builds the probe), which the
// install step makes only where nvcc is found.
const cuda = cudaBuildPaths();
const built = existsSync(cuda.library) && existsSync(cuda.probe);
const notBuilt = built ? false : 'the CUDA backend is not built here (no nvcc at install): nothing to probe';

test('a missing library is reported as a load failure, without spawning', async () => {
  const r = await probeBackend('/nonexistent/libcaphost_nothing.so');
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.stage, 'load');
});

test('the CUDA library loads and either serves devices or says in words why it cannot', { skip: notBuilt }, async () => {
  const r = await probeBackend(cuda.library);
  if (r.ok) {
    assert.equal(r.name, 'cuda');
    assert.ok(r.devices.length > 0);
    for (const d of r.devices) assert.ok(d.name.length > 0 && d.totalMemory > 0 && d.computeMajor >= 7);
  } else {
    assert.equal(r.stage, 'init', `unexpected failure: ${JSON.stringify(r)}`);
    assert.equal(r.status, 5); // CH_ERR_UNAVAILABLE
    assert.match(r.why, /driver|device/);
  }
});

const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/lib/aarch64-linux-gnu/libm.so.6', '/lib64/libm.so.6'].find(existsSync);

test('a library without the backend entry point is refused at the symbol stage', {
  skip: notBuilt || (libm ? false : 'no libm.so.6 at a known path to stand in for a foreign library'),
}, async () => {
  const r = await probeBackend(libm!, { probe: cuda.probe });
  assert.equal(r.ok ? 'ok' : r.stage, 'symbol');
});

test('a probe that dies is reported, not thrown', { skip: notBuilt }, async () => {
  // /bin/false stands in for a probe that crashed before printing anything.
  const r = await probeBackend(cuda.library, { probe: '/bin/false' });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.stage, 'probe');
});
