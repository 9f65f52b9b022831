/**
 * Baseline: child_process.fork of fixtures/ipc-echo.js, calls over
 * process.send / 'message'. Bytes travel as a base64 string over the default
 * JSON serialization, encoded per call and decoded from each reply, so the
 * caller gets bytes back like every other contender. That was the fastest
 * plain variant here: serialization 'advanced' with the Uint8Array as is came
 * out about 1.8x slower in throughput, JSON of a raw Uint8Array (an object of
 * 64 keys) about 4x slower. Replies arrive in send order: a FIFO of resolvers.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { assertEcho, makePayload, type Contender, type Pending } from './contender.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/ipc-echo.js', import.meta.url));

export async function startForkIpc(): Promise<Contender> {
  const subject = 'fork-ipc';
  const child = fork(FIXTURE, [], { serialization: 'json', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(child, 'spawn');

  const pending: Pending[] = [];
  let failure: unknown;
  const fail = (err: unknown): void => {
    failure ??= err;
    for (const p of pending.splice(0)) p.reject(err);
  };
  child.on('message', (m: unknown) => pending.shift()?.resolve(typeof m === 'string' ? Buffer.from(m, 'base64') : m));
  child.on('error', fail);
  child.on('exit', (code) => fail(new Error(`${subject}: echo child exited with code ${String(code)}`)));

  const send = (data: Uint8Array): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) return reject(failure);
      pending.push({ resolve, reject });
      child.send(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'));
    });

  const payload = makePayload();
  return {
    subject,
    call64: () => send(payload),
    async verify() {
      assertEcho(subject, payload, await send(payload));
    },
    async close() {
      child.removeAllListeners('exit');
      const exited = once(child, 'exit');
      child.disconnect();
      // The fixture exits on disconnect; SIGTERM only if it did not within a second.
      const t = setTimeout(() => child.kill('SIGTERM'), 1000);
      await exited;
      clearTimeout(t);
    },
  };
}
