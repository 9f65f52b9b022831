/**
 * Baseline: piscina with one thread (minThreads = maxThreads = 1), so every
 * contender in the core suite is one worker against one worker. The 1 MiB
 * hand-off uses Piscina.move both ways, i.e. a transfer, never a copy.
 */
import { Piscina, move } from 'piscina';
import { fileURLToPath } from 'node:url';
import { assertEcho, assertStamped, HANDOFF_BYTES, makePayload, stamp, type Contender } from './contender.js';

export async function startPiscina(subject: string, extra: { atomics?: 'disabled' } = {}): Promise<Contender> {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('../fixtures/piscina-echo.js', import.meta.url)),
    minThreads: 1,
    maxThreads: 1,
    ...extra,
  });
  const payload = makePayload();
  let buf: Float32Array = new Float32Array(HANDOFF_BYTES / 4);

  const handoff = async (): Promise<void> => {
    buf = (await pool.run(move(buf))) as Float32Array;
  };

  return {
    subject,
    call64: () => pool.run(payload),
    handoff,
    async verify() {
      assertEcho(subject, payload, await pool.run(payload));
      stamp(buf);
      const sent = buf;
      await handoff();
      assertStamped(subject, buf);
      if (sent.byteLength !== 0) throw new Error(`${subject}: 1 MiB buffer was copied, not transferred`);
    },
    close: () => pool.destroy(),
  };
}
