import assert from 'node:assert/strict';
import { test } from 'node:test';
import { behave, start } from './fixtures.js';

test('an idle controller with 4 idle workers parks instead of spinning', async () => {
  const controller = await start({ workers: [behave({ replicas: 4 })] });
  try {
    for (let i = 0; i < 20; i++) await controller.call('test.sync@1', { value: 'warm' });
    await new Promise((r) => setTimeout(r, 300));
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const used = process.cpuUsage(cpu);
    const share = (used.user + used.system) / 1000 / (performance.now() - t0);
    // The benchmark measures this over 10 s against < 1 %; here a loose bound keeps CI stable.
    assert.ok(share < 0.05, `idle process used ${(share * 100).toFixed(2)} % of a core`);
  } finally {
    await controller.close();
  }
});
