/** The native TCP server under `caphost serve`: events, slabs, back-pressure, half-close, errors. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { test } from 'node:test';
import { createTcpServer, listenError, NetEvent, type TcpServer } from '../../src/native/net-binding.js';

interface Seen {
  kind: number;
  id: number;
  data?: Buffer;
  errno?: number;
}

/** A server that records its events; `react` runs after each one is recorded. */
function recording(react: (e: Seen, tcp: TcpServer) => void = () => {}): { tcp: TcpServer; port: number; events: Seen[]; next: (kind: number) => Promise<Seen> } {
  const events: Seen[] = [];
  const waiters: { kind: number; resolve: (e: Seen) => void }[] = [];
  let slab: Buffer = Buffer.alloc(0);
  const tcp: TcpServer = createTcpServer((kind, id, value, length) => {
    if (kind === NetEvent.SLAB) {
      slab = value as Buffer;
      return;
    }
    const e: Seen = { kind, id };
    if (kind === NetEvent.DATA) e.data = slab.subarray(value as number, (value as number) + length);
    if (kind === NetEvent.CLOSE) e.errno = value as number;
    events.push(e);
    react(e, tcp);
    for (const w of waiters.filter((w) => w.kind === kind)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  const port = tcp.listen('127.0.0.1', 0, 64);
  const taken = new Set<Seen>();
  const next = (kind: number) => {
    const seen = events.find((e) => e.kind === kind && !taken.has(e));
    if (seen !== undefined) {
      taken.add(seen);
      return Promise.resolve(seen);
    }
    return new Promise<Seen>((resolve) => waiters.push({ kind, resolve: (e) => (taken.add(e), resolve(e)) }));
  };
  return { tcp, port, events, next };
}

async function client(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

test('a connection: data in order across slabs, answers written, END then exactly one CLOSE from the loop', { timeout: 20_000 }, async () => {
  const s = recording((e, tcp) => {
    if (e.kind === NetEvent.DATA) assert.equal(tcp.write(e.id, `got ${e.data!.length}\n`), 0);
  });
  const c = await client(s.port);
  const { id } = await s.next(NetEvent.CONNECTION);
  // More than one 128 KiB slab: views of earlier reads must not change as later reads arrive.
  const sent = Buffer.alloc(600_000);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 11)) & 0xff;
  c.write(sent);
  let answers = '';
  c.on('data', (b: Buffer) => (answers += b.toString()));
  c.end();
  await s.next(NetEvent.END);
  const got = Buffer.concat(s.events.filter((e) => e.kind === NetEvent.DATA).map((e) => e.data!));
  assert.ok(got.equals(sent), 'the bytes read, kept as views, are the bytes sent');
  s.tcp.destroy(id);
  assert.equal(s.events.filter((e) => e.kind === NetEvent.CLOSE).length, 0, 'CLOSE does not come from inside destroy()');
  const close = await s.next(NetEvent.CLOSE);
  const closes = s.events.filter((e) => e.kind === NetEvent.CLOSE).length;
  assert.deepEqual([close.id, close.errno, closes], [id, 0, 1]);
  assert.equal(s.tcp.write(id, 'late'), -1, 'a closed id takes no writes');
  s.tcp.destroy(id); // harmless
  await once(c, 'close');
  assert.match(answers, /^(got \d+\n)+$/);
  s.tcp.close();
});

test('back-pressure: what the kernel does not take waits, in order, and DRAIN says when it is written', { timeout: 20_000 }, async () => {
  const s = recording();
  const c = await client(s.port);
  const { id } = await s.next(NetEvent.CONNECTION);
  c.pause();
  const chunk = Buffer.alloc(1 << 20);
  let written = 0;
  let kept = 0;
  for (let i = 0; kept === 0 && i < 256; i++) {
    chunk.fill(i & 0xff);
    kept = s.tcp.write(id, '', chunk);
    written += chunk.length;
  }
  assert.ok(kept > 0, 'a client that does not read fills the kernel buffers');
  assert.equal(s.tcp.pending(id), kept);
  // More while bytes wait: kept behind them, not written ahead.
  assert.equal(s.tcp.write(id, 'tail'), kept + 4);
  written += 4;
  s.tcp.end(id);
  let received = 0;
  let ordered = true;
  c.on('data', (b: Buffer) => {
    for (let i = 0; i < b.length; i++) {
      const at = received + i;
      const expected = at >= written - 4 ? 'tail'.charCodeAt(at - (written - 4)) : Math.floor(at / chunk.length) & 0xff;
      if (b[i] !== expected) ordered = false;
    }
    received += b.length;
  });
  c.resume();
  await s.next(NetEvent.DRAIN);
  await once(c, 'end');
  assert.equal(received, written);
  assert.ok(ordered, 'bytes arrive in the order they were written');
  assert.equal(s.tcp.pending(id), 0);
  c.end();
  const close = await s.next(NetEvent.CLOSE);
  assert.equal(close.id, id, 'ended on both sides: the server closes the socket by itself');
  s.tcp.close();
});

test('pause stops DATA until resume; a peer that resets gives CLOSE with its errno', { timeout: 20_000 }, async () => {
  const s = recording();
  const c = await client(s.port);
  const { id } = await s.next(NetEvent.CONNECTION);
  s.tcp.pause(id);
  c.write('held');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.events.filter((e) => e.kind === NetEvent.DATA).length, 0);
  s.tcp.resume(id);
  assert.equal((await s.next(NetEvent.DATA)).data!.toString(), 'held');
  c.resetAndDestroy();
  const close = await s.next(NetEvent.CLOSE);
  assert.equal(close.id, id);
  assert.equal(close.errno, osConstants.errno.ECONNRESET);
  s.tcp.close();
});

test('listen: a port in use is refused with EADDRINUSE; a name that is not an address is refused', { timeout: 20_000 }, async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as { port: number }).port;
  const tcp = createTcpServer(() => {});
  assert.throws(
    () => {
      try {
        tcp.listen('127.0.0.1', port, 16);
      } catch (err) {
        throw listenError(err);
      }
    },
    /^Error: bind EADDRINUSE/,
  );
  assert.throws(() => tcp.listen('localhost', 0, 16), (err: Error & { code?: string }) => err.code === 'INVALID_ARGUMENT');
  taken.close();
  // IPv6, where the machine has it.
  try {
    const six = createTcpServer(() => {});
    assert.ok(six.listen('::1', 0, 16) > 0);
    six.close();
  } catch (err) {
    assert.match(String(err), /EADDRNOTAVAIL|EAFNOSUPPORT|Address family|Cannot assign/);
  }
});

test('a worker thread that ends with its server listening and a connection open takes them down cleanly', { timeout: 60_000 }, async () => {
  // Its sockets' close callbacks run after its env is gone and Node has unloaded the addon for
  // it; before the addon pinned itself in memory, that crashed the process. A process of its
  // own, so that no other env holds the addon loaded.
  const binding = new URL('../../src/native/net-binding.js', import.meta.url).href;
  const worker = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(binding)}).then(({ createTcpServer }) => {
      const tcp = createTcpServer((kind) => { if (kind === 0) parentPort.postMessage('connection'); });
      parentPort.postMessage(tcp.listen('127.0.0.1', 0, 16));
    });`;
  const main = `
    const { Worker } = require('node:worker_threads');
    const { once } = require('node:events');
    const { connect } = require('node:net');
    (async () => {
      for (let round = 0; round < 3; round++) {
        const w = new Worker(${JSON.stringify(worker)}, { eval: true });
        const [port] = await once(w, 'message');
        const c = connect(port, '127.0.0.1');
        c.on('error', () => {});
        await once(w, 'message');
        await w.terminate();
        c.destroy();
      }
      console.log('done');
    })();`;
  const child = spawn(process.execPath, ['-e', main], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  assert.deepEqual([code, signal, out.trim()], [0, null, 'done']);
});

test('out of descriptors, the server waits instead of spinning on its backlog, and accepts again once some close', { timeout: 60_000 }, async () => {
  // A child with a low descriptor limit; the parent opens more connections than it can accept.
  const binding = new URL('../../src/native/net-binding.js', import.meta.url).href;
  const server = `
    import(${JSON.stringify(binding)}).then(({ createTcpServer }) => {
      let open = 0;
      let accepted = 0;
      const tcp = createTcpServer((kind, id) => {
        if (kind === 0) (open++, accepted++);
        if (kind === 2) tcp.destroy(id);
        if (kind === 4) open--;
      });
      console.log(tcp.listen('127.0.0.1', 0, 512));
      let cpu = process.cpuUsage();
      setInterval(() => {
        const used = process.cpuUsage(cpu);
        cpu = process.cpuUsage();
        console.log(JSON.stringify({ open, accepted, cpuMs: (used.user + used.system) / 1000 }));
      }, 250);
    });`;
  const child = spawn('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" -e '${server.replace(/'/g, `'"'"'`)}'`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buffered = '';
  child.stdout.on('data', (b: Buffer) => {
    buffered += b.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  const reports = () => lines.slice(1).map((l) => JSON.parse(l) as { open: number; accepted: number; cpuMs: number });
  const waitFor = async (ok: () => boolean, what: string) => {
    const until = Date.now() + 20_000;
    while (!ok()) {
      if (Date.now() > until) throw new Error(`${what}; child said ${lines.slice(-3).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await waitFor(() => lines.length > 0, 'no port');
    const port = Number(lines[0]);
    const sockets: Socket[] = [];
    for (let i = 0; i < 100; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
    }
    // Accepted up to the limit; the rest wait in the backlog.
    await waitFor(() => reports().length > 6, 'no reports');
    const full = reports().slice(-3);
    assert.ok(full.every((r) => r.open > 10 && r.open < 64), JSON.stringify(full));
    assert.ok(full.every((r) => r.cpuMs < 100), `spinning on the backlog: ${JSON.stringify(full)}`);
    const before = full.at(-1)!.accepted;
    assert.ok(before < 100);
    // Those it accepted first close: their places go to connections from the backlog.
    for (const s of sockets.splice(0, 30)) s.destroy();
    await waitFor(() => reports().at(-1)!.accepted >= before + 20, 'did not accept again');
    for (const s of sockets) s.destroy();
  } finally {
    child.kill();
  }
});
