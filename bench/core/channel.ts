/**
 * Baseline: a bare worker_thread echoing over a MessageChannel. Replies come
 * back in send order on one port, so a FIFO of resolvers pairs them with calls
 * without any id on the wire (ids would add cost the baseline should not have).
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { assertEcho, assertStamped, HANDOFF_BYTES, makePayload, stamp, type Contender } from './contender.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export async function startChannel(): Promise<Contender> {
  const subject = 'message-channel';
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('../fixtures/channel-echo.js', import.meta.url), {
    workerData: { port: port2 },
    transferList: [port2],
  });
  await once(worker, 'online');

  // A plain array as FIFO: shift() is O(1) amortised in V8 for queues this short.
  const pending: Pending[] = [];
  let failure: unknown;
  port1.on('message', (m: unknown) => pending.shift()?.resolve(m));
  const fail = (err: unknown): void => {
    failure ??= err;
    for (const p of pending.splice(0)) p.reject(err);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`${subject}: worker exited with code ${code}`)));

  const send = (m: unknown, transfer?: ArrayBuffer[]): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) return reject(failure);
      pending.push({ resolve, reject });
      port1.postMessage(m, transfer);
    });

  const payload = makePayload();
  let buf: Float32Array = new Float32Array(HANDOFF_BYTES / 4);

  const handoff = async (): Promise<void> => {
    buf = (await send(buf, [buf.buffer as ArrayBuffer])) as Float32Array;
  };

  return {
    subject,
    call64: () => send(payload),
    handoff,
    async verify() {
      assertEcho(subject, payload, await send(payload));
      stamp(buf);
      const sent = buf;
      await handoff();
      assertStamped(subject, buf);
      if (sent.byteLength !== 0) throw new Error(`${subject}: 1 MiB buffer was copied, not transferred`);
    },
    async close() {
      worker.removeAllListeners('exit');
      port1.close();
      await worker.terminate();
    },
  };
}
