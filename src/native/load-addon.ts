/**
 * Finds one of caphost's node-gyp addons (build/Release, then build/Debug, under the package
 * root) and loads it, or throws NATIVE_ERROR listing what was tried and how to rebuild.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CaphostError, ErrorCode } from '../errors.js';

// Compiled to dist/src/native/load-addon.js: the package root is three levels up.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const require = createRequire(import.meta.url);

export function loadAddon<T>(name: string): T {
  const failures: string[] = [];
  for (const mode of ['Release', 'Debug']) {
    const path = join(root, 'build', mode, `${name}.node`);
    try {
      return require(path) as T;
    } catch (err) {
      failures.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new CaphostError(
    ErrorCode.NATIVE_ERROR,
    `The caphost native addon ${name}.node could not be loaded; run \`npm rebuild caphost\` (needs a C++17 compiler and Python for node-gyp). Tried: ${failures.join('; ')}`,
    { details: { tried: failures } },
  );
}

/** The package root: where build/ and build-cuda/ live. */
export function packageRoot(): string {
  return root;
}
