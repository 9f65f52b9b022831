/**
 * Baseline: a child process (child_process.fork of fixtures/socket-echo.js)
 * echoing length-prefixed frames over a Unix-domain socket in os.tmpdir().
 * One connection, replies in send order, so a FIFO of resolvers pairs them
 * with calls without an id on the wire. Writes issued in the same tick are
 * corked into one writev, as a tuned client would.
 */
import { fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { assertEcho, makePayload, type Contender, type Pending } from './contender.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/socket-echo.js', import.meta.url));
const HEADER = 4;

export async function startUnixSocket(): Promise<Contender> {
  const subject = 'unix-socket';
  const path = join(tmpdir(), `caphost-bench-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
  const child = fork(FIXTURE, [path], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [first] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${subject}: echo child exited with code ${String(code)} before listening`);
    }),
  ])) as [unknown];
  if (first !== 'listening') throw new Error(`${subject}: unexpected first message from echo child`);

  const sock: Socket = connect(path);
  await once(sock, 'connect');
  sock.setNoDelay?.(true);

  const pending: Pending[] = [];
  let failure: unknown;
  const fail = (err: unknown): void => {
    failure ??= err;
    for (const p of pending.splice(0)) p.reject(err);
  };
  sock.on('error', fail);
  sock.on('close', () => fail(new Error(`${subject}: socket closed`)));
  child.on('exit', (code) => fail(new Error(`${subject}: echo child exited with code ${String(code)}`)));

  // Frame reader: chunks may hold many frames or part of one.
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let off = 0;
    while (buf.length - off >= HEADER) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - HEADER < len) break;
      const body = new Uint8Array(buf.buffer, buf.byteOffset + off + HEADER, len);
      off += HEADER + len;
      pending.shift()?.resolve(body);
    }
    buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
  });

  let corked = false;
  const uncork = (): void => {
    corked = false;
    sock.uncork();
  };
  const send = (data: Uint8Array): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) return reject(failure);
      pending.push({ resolve, reject });
      const frame = Buffer.allocUnsafe(HEADER + data.byteLength);
      frame.writeUInt32LE(data.byteLength, 0);
      frame.set(data, HEADER);
      if (!corked) {
        corked = true;
        sock.cork();
        process.nextTick(uncork);
      }
      sock.write(frame);
    });

  const payload = makePayload();
  return {
    subject,
    call64: () => send(payload),
    async verify() {
      assertEcho(subject, payload, await send(payload));
    },
    async close() {
      sock.removeAllListeners('close');
      child.removeAllListeners('exit');
      const exited = once(child, 'exit');
      sock.destroy();
      child.kill('SIGTERM');
      await exited;
      await rm(path, { force: true });
    },
  };
}
