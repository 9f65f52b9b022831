/**
 * The demo: an application embedding a controller with the example workers, on the CPU.
 * Run with `npm run demo` (after `npm install`).
 */
import { Controller, isCaphostError } from 'caphost';

const here = (file: string): URL => new URL(file, import.meta.url);
const say = (...parts: unknown[]): void => console.log('demo:', ...parts);

const controller = await Controller.start({
  workers: [
    { module: here('./echo-worker.js'), strategy: 'thread', replicas: 1 },
    { module: here('./text-worker.js'), strategy: 'thread', replicas: 2, resourceLimits: { maxOldGenerationSizeMb: 64 } },
  ],
  logger: 'warn',
});

try {
  say('capabilities:', controller.capabilities().map((c) => `${c.capability} (${c.providers} provider${c.providers > 1 ? 's' : ''})`).join(', '));

  const tokens = await controller.call<{ tokens: string[]; count: number }>('text.tokens@1', { text: 'Hello, caphost! Capabilities, not services.' });
  say('text.tokens@1 ->', tokens.count, 'tokens:', tokens.tokens.join(' | '));

  const stats = await controller.call<{ words: number; frequencies: Record<string, number> }>('text.stats@1.1', { text: 'to be or not to be' });
  say('text.stats@1.1 ->', stats.words, 'words, frequencies', JSON.stringify(stats.frequencies));

  const echoed = await controller.call<{ data: Uint8Array }>('echo.bytes@1', { data: new TextEncoder().encode('ping') });
  say('echo.bytes@1 ->', new TextDecoder().decode(echoed.data));

  // Shared memory: the worker sees these bytes in place and the reply is the same memory.
  const floats = controller.arena.allocArray(Float32Array, 1 << 18);
  floats.fill(0.5);
  const handoffs: number[] = [];
  let view: { data: Uint8Array } | undefined;
  for (let i = 0; i < 1000; i++) {
    const t0 = performance.now();
    view = await controller.call<{ data: Uint8Array }>('echo.bytes@1', { data: floats });
    handoffs.push((performance.now() - t0) * 1000);
  }
  handoffs.sort((a, b) => a - b);
  say(`1 MiB through the shared arena and back: p50 ${handoffs[500]!.toFixed(1)} µs, same memory: ${view!.data.byteOffset === floats.byteOffset}`);
  controller.arena.free(floats);

  const latencies: number[] = [];
  const payload = new Uint8Array(64);
  for (let i = 0; i < 20_000; i++) {
    const t0 = performance.now();
    await controller.call('echo.bytes@1', { data: payload });
    latencies.push((performance.now() - t0) * 1000);
  }
  latencies.sort((a, b) => a - b);
  say(`20000 sequential 64-byte calls: p50 ${latencies[10_000]!.toFixed(1)} µs, p99 ${latencies[19_800]!.toFixed(1)} µs`);

  for (const [capability, input, options] of [
    ['text.stats@1', { text: 'a slow one' }, { deadlineMs: 50 }],
    ['text.tokens@2', { text: 'x' }, {}],
    ['text.tokens@1', { text: 42 }, {}],
  ] as const) {
    try {
      await controller.call(capability, input, options);
    } catch (err) {
      if (!isCaphostError(err)) throw err;
      say(`${capability} -> ${err.code}: ${err.message}`);
    }
  }

  const { workers, capabilities } = controller.stats();
  say('workers:', workers.map((w) => `${w.worker} ${w.state}`).join(', '));
  say('calls:', Object.entries(capabilities).map(([cap, c]) => `${cap} ok=${c.ok} errors=${JSON.stringify(c.errors)}`).join('; '));
} finally {
  await controller.close();
  say('closed');
}
