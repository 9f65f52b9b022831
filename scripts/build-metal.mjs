// Builds the Metal device backend with CMake and Xcode's clang: objects in build-metal/, the
// library and its tools copied to build/metal/ where the controller looks. The kernels are Metal Shading Language source compiled at load,
// so no offline metal compiler is needed.
//
//   node scripts/build-metal.mjs             (npm run build:metal) fails when it cannot build
//   node scripts/build-metal.mjs --if-macos  (the install step) skips, saying why, off macOS,
//                                            without CMake, or with CAPHOST_METAL=off
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build-metal');
const outDir = join(root, 'build', 'metal');
const ARTIFACTS = ['libcaphost_metal.dylib', 'caphost-backend-probe', 'caphost-backend-conformance', 'caphost-backend-bench'];
const optional = process.argv.includes('--if-macos');

function skip(reason) {
  if (optional) {
    console.log(`caphost metal: skipped: ${reason}`);
    process.exit(0);
  }
  console.error(`caphost metal: cannot build: ${reason}`);
  process.exit(1);
}

if (process.platform !== 'darwin') skip(`the Metal backend builds on macOS only (this is ${process.platform})`);
if ((process.env.CAPHOST_METAL ?? '').toLowerCase() === 'off') skip('CAPHOST_METAL=off');
if (spawnSync('cmake', ['--version']).status !== 0) skip('cmake was not found on PATH (CMake 3.18 or later; e.g. brew install cmake)');

const started = Date.now();
for (const [what, args] of [
  ['configure', ['-S', join(root, 'native', 'metal'), '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release']],
  ['build', ['--build', buildDir, '--parallel']],
]) {
  const r = spawnSync('cmake', args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`caphost metal: the ${what} step failed (cmake ${args.join(' ')})`);
    process.exit(1);
  }
}
mkdirSync(outDir, { recursive: true });
for (const name of ARTIFACTS) {
  const built = join(buildDir, name);
  if (!existsSync(built)) {
    console.error(`caphost metal: the build finished without ${built}`);
    process.exit(1);
  }
  copyFileSync(built, join(outDir, name));
}
console.log(`caphost metal: built ${join(outDir, 'libcaphost_metal.dylib')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
