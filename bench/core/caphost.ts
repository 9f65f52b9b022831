/**
 * caphost as a core-suite contender: one thread worker serving echo.bytes@1.
 * The 1 MiB hand-off passes an arena view, which must travel by reference:
 * verify() proves the reply aliases the very bytes that were sent.
 */
import { Controller } from '../../src/index.js';
import { assertEcho, HANDOFF_BYTES, makePayload, type Contender } from './contender.js';

const CAPABILITY = 'echo.bytes@1';
const ECHO_WORKER = new URL('../fixtures/echo-worker.js', import.meta.url);

export function startController(replicas: number): ReturnType<typeof Controller.start> {
  return Controller.start({ workers: [{ module: ECHO_WORKER, strategy: 'thread', replicas }] });
}

export async function startCaphost(): Promise<Contender> {
  const subject = 'caphost';
  const controller = await startController(1);
  const small = { data: makePayload() };
  const view = controller.arena.alloc(HANDOFF_BYTES);
  const big = { data: view };
  const echo = async (input: { data: Uint8Array }): Promise<Uint8Array> =>
    ((await controller.call(CAPABILITY, input)) as { data: Uint8Array }).data;

  return {
    subject,
    call64: () => controller.call(CAPABILITY, small),
    handoff: () => controller.call(CAPABILITY, big),
    async verify() {
      assertEcho(subject, small.data, await echo(small));
      // The figure is about a Float32Array; give the bytes that shape.
      new Float32Array(view.buffer, view.byteOffset, HANDOFF_BYTES / 4).fill(1.5);
      const out = await echo(big);
      if (out.byteOffset !== view.byteOffset || out.byteLength !== view.byteLength) {
        throw new Error(
          `${subject}: arena view came back at offset ${out.byteOffset} (${out.byteLength} bytes), ` +
            `sent at ${view.byteOffset} (${view.byteLength} bytes): not passed by reference`,
        );
      }
      // Same offset is not enough if it is a copy in another buffer: write
      // through the reply and read through the original.
      const marker = out[1]! ^ 0xff;
      out[1] = marker;
      if (view[1] !== marker) throw new Error(`${subject}: reply does not alias the arena bytes that were sent`);
    },
    async close() {
      controller.arena.free(view);
      await controller.close();
    },
  };
}

/**
 * Process CPU with `replicas` idle thread workers, as % of one core. A few
 * calls first so every worker has started and served; then a settle pause so
 * start-up work and any spin-before-park phase are over before the window opens.
 */
export async function idleCpuWithWorkers(
  replicas: number,
  windowMs: number,
  idleCpuPercent: (windowMs: number) => Promise<number>,
): Promise<number> {
  const controller = await startController(replicas);
  try {
    const input = { data: makePayload() };
    await Promise.all(Array.from({ length: replicas * 4 }, () => controller.call(CAPABILITY, input)));
    await new Promise((r) => setTimeout(r, 500));
    return await idleCpuPercent(windowMs);
  } finally {
    await controller.close();
  }
}
