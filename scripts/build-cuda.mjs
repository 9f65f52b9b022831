// Builds the CUDA device backend with CMake and the machine's nvcc: objects in build-cuda/
// (kept across node-gyp rebuilds, which empty build/), the library and its tools copied to
// build/cuda/ where the controller looks (libcaphost_cuda.so, caphost-backend-probe,
// caphost-backend-conformance, caphost-backend-bench).
//
//   node scripts/build-cuda.mjs            (npm run build:cuda) fails when it cannot build
//   node scripts/build-cuda.mjs --if-nvcc  (the install step) skips, saying why, when there is
//                                          no nvcc, no CMake or CAPHOST_CUDA=off; a machine
//                                          that has nvcc and fails to compile still fails
//
// CAPHOST_CUDA_ARCHS overrides the architectures (CMake syntax, e.g. "90" or "80-real;90").
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build-cuda');
const outDir = join(root, 'build', 'cuda');
const ARTIFACTS = ['libcaphost_cuda.so', 'caphost-backend-probe', 'caphost-backend-conformance', 'caphost-backend-bench'];
const optional = process.argv.includes('--if-nvcc');
const say = (line) => console.log(`caphost cuda: ${line}`);

function skip(reason) {
  if (optional) {
    say(`skipped: ${reason}`);
    process.exit(0);
  }
  console.error(`caphost cuda: cannot build: ${reason}`);
  process.exit(1);
}

function run(cmd, args) {
  return spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
}

function findNvcc() {
  const candidates = [
    process.env.CUDACXX,
    process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin', 'nvcc'),
    process.env.CUDA_PATH && join(process.env.CUDA_PATH, 'bin', 'nvcc'),
    'nvcc',
    '/usr/local/cuda/bin/nvcc',
  ].filter(Boolean);
  for (const c of candidates) {
    const r = run(c, ['--version']);
    if (r.status === 0) {
      const m = /release (\d+)\.(\d+)/.exec(r.stdout);
      return { path: c, major: m ? Number(m[1]) : 0, minor: m ? Number(m[2]) : 0 };
    }
  }
  return null;
}

if (process.platform !== 'linux') skip(`the CUDA backend builds on Linux only (this is ${process.platform})`);
if ((process.env.CAPHOST_CUDA ?? '').toLowerCase() === 'off') skip('CAPHOST_CUDA=off');
const nvcc = findNvcc();
if (!nvcc) skip('nvcc was not found (not on PATH, no CUDACXX, CUDA_HOME or /usr/local/cuda/bin/nvcc); install the CUDA toolkit 12 or later to build the GPU backend');
if (nvcc.major < 12) skip(`nvcc ${nvcc.major}.${nvcc.minor} (${nvcc.path}) is older than the CUDA 12 the backend needs`);
if (run('cmake', ['--version']).status !== 0) skip('cmake was not found on PATH (CMake 3.18 or later is needed next to nvcc)');

say(`building with nvcc ${nvcc.major}.${nvcc.minor} (${nvcc.path}) into build/cuda/`);
const started = Date.now();
const configure = ['-S', join(root, 'native', 'cuda'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', `-DCMAKE_CUDA_COMPILER=${nvcc.path}`];
// Without CAPHOST_CUDA_ARCHS, drop a cached arch list so CMakeLists.txt's default applies again.
configure.push(process.env.CAPHOST_CUDA_ARCHS ? `-DCMAKE_CUDA_ARCHITECTURES=${process.env.CAPHOST_CUDA_ARCHS}` : '-UCMAKE_CUDA_ARCHITECTURES');
for (const [what, args] of [
  ['configure', configure],
  ['build', ['--build', buildDir, '--parallel', String(Math.max(1, Number(process.env.CAPHOST_CUDA_JOBS) || 2))]],
]) {
  const r = spawnSync('cmake', args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`caphost cuda: the ${what} step failed (cmake ${args.join(' ')})`);
    process.exit(1);
  }
}
mkdirSync(outDir, { recursive: true });
for (const name of ARTIFACTS) {
  const built = join(buildDir, name);
  if (!existsSync(built)) {
    console.error(`caphost cuda: the build finished without ${built}`);
    process.exit(1);
  }
  copyFileSync(built, join(outDir, name));
}
const library = join(outDir, 'libcaphost_cuda.so');
const seconds = (Date.now() - started) / 1000;
writeFileSync(
  join(outDir, 'build-info.json'),
  JSON.stringify({ library, probe: join(outDir, 'caphost-backend-probe'), nvcc: `${nvcc.major}.${nvcc.minor}`, seconds }, null, 2) + '\n',
);
say(`built ${library} in ${seconds.toFixed(1)} s`);
