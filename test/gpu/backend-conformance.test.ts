import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cudaBuildPaths, probeBackend } from '../../src/device/backend-probe.js';

// Every op of the backend interface on each GPU backend library, against float64 references,
// through the native conformance driver (native/tools/conformance.cc, built next to the
// library; the tolerances are stated there). Needs the hardware: each backend skips, saying
// why, when its library is not built here or cannot run (no driver, no device).

interface Candidate {
  name: string;
  library: string;
  driver: string;
  notBuiltReason: string;
  /** Extra environment for this pass (the CUDA library's optional cuBLAS GEMM path). */
  env?: Record<string, string>;
}

const metalDir = new URL('../../../build/metal/', import.meta.url);
const candidates: Candidate[] = [
  {
    name: 'cuda',
    library: cudaBuildPaths().library,
    driver: fileURLToPath(new URL('../../../build/cuda/caphost-backend-conformance', import.meta.url)),
    notBuiltReason: 'the CUDA backend is not built here: nvcc was not found at install (npm run build:cuda builds it)',
  },
  {
    name: 'cuda with CAPHOST_CUDA_GEMM=cublas',
    library: cudaBuildPaths().library,
    driver: fileURLToPath(new URL('../../../build/cuda/caphost-backend-conformance', import.meta.url)),
    notBuiltReason: 'the CUDA backend is not built here: nvcc was not found at install (npm run build:cuda builds it)',
    env: { CAPHOST_CUDA_GEMM: 'cublas' },
  },
  {
    name: 'metal',
    library: fileURLToPath(new URL('libcaphost_metal.dylib', metalDir)),
    driver: fileURLToPath(new URL('caphost-backend-conformance', metalDir)),
    notBuiltReason:
      process.platform === 'darwin'
        ? 'the Metal backend is not built here (npm run build:metal builds it)'
        : `the Metal backend builds on macOS only (this is ${process.platform})`,
  },
];

async function skipReason(c: Candidate): Promise<string | false> {
  if (!existsSync(c.library) || !existsSync(c.driver)) return c.notBuiltReason;
  const env = { ...process.env, ...c.env };
  const probe = await probeBackend(c.library, { env });
  if (!probe.ok) return `${c.name} cannot run here: ${probe.why}`;
  return false;
}

for (const c of candidates) {
  const skip = await skipReason(c);
  test(`${c.name}: every op matches the float64 reference within its tolerance`, { skip, timeout: 15 * 60_000 }, async () => {
    const { code, out } = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(c.driver, [c.library], { timeout: 14 * 60_000, maxBuffer: 16 << 20, env: { ...process.env, ...c.env } }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, out: `${stdout}${stderr}` });
      });
    });
    assert.equal(code, 0, `conformance driver exited with ${code}:\n${out}`);
    assert.match(out, /\d+ passed, 0 failed/);
  });
}
