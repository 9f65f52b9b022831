import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigLocator } from '../../src/server/config-locator.js';

test('finds keys by path through objects, arrays, calls, strings and comments', () => {
  const source = [
    "import x from './x.js'; // { not: 'an object' }",
    'export default {',
    "  workers: [",
    "    { module: new URL('./a.js', import.meta.url), replicas: 2 },",
    '    /* workers: [ { replicas: 9 } ] */',
    '    {',
    "      module: 'b, c.js',",
    '      strategy: `process`,',
    '      replicas: 3,',
    '    },',
    '  ],',
    "  models: { 'embed.text@1': { name: 'e' } },",
    '  server: { port: 8000 },',
    '};',
  ].join('\n');
  const at = new ConfigLocator(source);
  assert.deepEqual(at.find('workers[0].replicas'), { line: 4, column: 51 });
  assert.deepEqual(at.find('workers[1].replicas'), { line: 9, column: 7 });
  assert.equal(at.find('workers[1].strategy')?.line, 8);
  assert.equal(at.find('models["embed.text@1"].name')?.line, 12);
  assert.equal(at.find('server.port')?.line, 13);
  // Not written: its nearest written parent.
  assert.equal(at.find('workers[1].sandbox')?.line, 6);
  assert.equal(at.find('server.host')?.line, 13);
  assert.equal(at.find('nothing.here'), undefined);
});

test('a config returned by a function is found too', () => {
  const at = new ConfigLocator('export default async () => {\n  const n = 2;\n  return {\n    workers: [{ replicas: n }],\n  };\n};\n');
  assert.equal(at.find('workers[0].replicas')?.line, 4);
});
