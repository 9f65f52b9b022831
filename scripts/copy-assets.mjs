// tsc copies only .ts output; worker modules may name .proto files relative to themselves,
// so the .proto files beside examples and test fixtures are copied next to their compiled JS.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';

const roots = ['examples', 'test', 'bench', 'scripts'];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.proto')) {
      const target = join('dist', path);
      mkdirSync(dirname(target), { recursive: true });
      cpSync(path, target);
    }
  }
}
for (const root of roots) {
  try { walk(root); } catch (err) { if (err.code !== 'ENOENT') throw err; }
}
