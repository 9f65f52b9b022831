/** The HTTP/1.1 layer over real sockets: framing, keep-alive, pipelining, 100-continue, timeouts. */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Http1Server } from '../../src/server/http1-server.js';

/** Everything the server writes until it closes the connection (or `ms` passes). */
function exchange(port: number, sends: (string | Buffer)[], ms = 2000, gapMs = 0): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, ms);
    socket.on('data', (b) => (text += b.toString('latin1')));
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    socket.on('error', () => {});
    socket.on('connect', async () => {
      for (const s of sends) {
        socket.write(s);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

describe('Http1Server', () => {
  let server: Http1Server;
  let port = 0;
  const refused: number[] = [];
  before(async () => {
    server = new Http1Server(
      { maxHeaderBytes: 4096, maxBodyBytes: 100, headersTimeoutMs: 300, requestTimeoutMs: 300, keepAliveTimeoutMs: 300 },
      (req, res) => {
        const answer = () => res.send(200, ['Content-Type', 'text/plain'], `${req.method} ${req.url} [${req.body.toString()}]`);
        // Slow answers prove that pipelined responses still come back in order.
        if (req.url === '/slow') setTimeout(answer, 50);
        else answer();
      },
      (res, status, message, tooLarge) => {
        refused.push(status);
        res.send(status, ['Content-Type', 'text/plain'], tooLarge !== undefined ? `too large: ${tooLarge}` : message, true);
      },
    );
    await server.listen(0, '127.0.0.1');
    port = server.address().port;
  });
  after(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(r);
  }));

  test('pipelined requests are answered in order on one connection', async () => {
    const { text } = await exchange(port, ['GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nConnection: close\r\n\r\n']);
    const bodies = [...text.matchAll(/\r\n\r\n([A-Z]+ \S+ \[[^\]]*\])/g)].map((m) => m[1]);
    assert.deepEqual(bodies, ['GET /slow []', 'POST /b [abc]', 'GET /c []']);
    assert.match(text, /Connection: close\r\n/);
  });

  test('a client that pipelines and does not read is read no further; once it reads, every answer comes, in order', { timeout: 60_000 }, async () => {
    // A server of its own, with room to be slow: a loaded CI machine reads 16 MB at its own pace.
    const own = new Http1Server(
      { maxHeaderBytes: 4096, maxBodyBytes: 100, headersTimeoutMs: 30_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 30_000 },
      (req, res) => res.send(200, ['Content-Type', 'text/plain'], `${req.method} ${req.url} [${req.body.toString()}]`),
      (res, status, message) => res.send(status, [], message, true),
    );
    await own.listen(0, '127.0.0.1');
    const socket: Socket = connect(own.address().port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    socket.pause();
    const n = 40_000;
    const pad = 'x'.repeat(300);
    const requests = Buffer.from(Array.from({ length: n }, (_, i) => `GET /p${i}?${pad} HTTP/1.1\r\n\r\n`).join(''));
    socket.write(requests);
    // The answers fill the kernel's buffers and the server's; it must stop reading, not buffer 40 000 answers.
    await new Promise((r) => setTimeout(r, 300));
    let text = '';
    socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
    socket.resume();
    const until = Date.now() + 40_000;
    while ((text.match(/\r\n\r\nGET \/p\d+\?x+ \[\]/g)?.length ?? 0) < n && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    await new Promise<void>((r) => {
      own.closeAllConnections();
      own.close(r);
    });
    const urls = [...text.matchAll(/\r\n\r\nGET \/p(\d+)\?x+ \[\]/g)].map((m) => Number(m[1]));
    assert.equal(urls.length, n);
    assert.ok(urls.every((u, i) => u === i), 'answers in request order');
  });

  test('a client that never reads its answers is dropped after requestTimeoutMs', { timeout: 30_000 }, async () => {
    const socket: Socket = connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.on('error', () => {});
    socket.pause();
    const pad = 'x'.repeat(300);
    socket.write(Buffer.from(Array.from({ length: 40_000 }, (_, i) => `GET /q${i}?${pad} HTTP/1.1\r\n\r\n`).join('')));
    const t0 = Date.now();
    // Reading stays paused; the only way to see the close is the socket's end of the stream.
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.once('end', () => resolve());
      setTimeout(() => {
        socket.resume();
      }, 5000);
    });
    assert.ok(Date.now() - t0 < 5000, `dropped after ${Date.now() - t0} ms`);
    socket.destroy();
  });

  test('a chunked body, sent in pieces', async () => {
    const { text } = await exchange(port, ['POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nab', 'c\r\n2\r\nde\r\n0\r\n\r\n'], 2000, 20);
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /POST \/c \[abcde\]$/);
  });

  test('Expect: 100-continue gets the go-ahead before the body is sent', async () => {
    const { text } = await exchange(port, ['POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n', 'ok'], 2000, 30);
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /\[ok\]$/);
  });

  test('HEAD gets the headers of GET and no body', async () => {
    const { text } = await exchange(port, ['HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n']);
    assert.match(text, /Content-Length: 10\r\n/);
    assert.ok(text.endsWith('\r\n\r\n'), JSON.stringify(text));
  });

  test('HTTP/1.0 closes unless it asks to keep the connection', async () => {
    const plain = await exchange(port, ['GET /a HTTP/1.0\r\n\r\n']);
    assert.ok(plain.closed);
    assert.match(plain.text, /Connection: close/);
    const kept = await exchange(port, ['GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], 150);
    assert.match(kept.text, /Connection: keep-alive/);
    assert.equal(kept.closed, false);
  });

  test('a body over the limit is refused with 413 and the connection closed, unread', async () => {
    const { text, closed } = await exchange(port, ['POST /big HTTP/1.1\r\nContent-Length: 101\r\n\r\n']);
    assert.match(text, /^HTTP\/1\.1 413 Payload Too Large\r\n/);
    assert.match(text, /too large: 101$/);
    assert.ok(closed);
  });

  test('garbage gets 400 and a closed connection', async () => {
    const { text, closed } = await exchange(port, ['NOT HTTP AT ALL\r\n\r\n']);
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.ok(closed);
  });

  test('idle keep-alive connections close; a request that stalls gets 408', async () => {
    const idle = await exchange(port, ['GET /a HTTP/1.1\r\n\r\n'], 3000);
    assert.ok(idle.closed, 'the idle connection should have been closed');
    assert.match(idle.text, /^HTTP\/1\.1 200 OK/);
    const stalled = await exchange(port, ['POST /s HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'], 3000);
    assert.match(stalled.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(stalled.closed);
    assert.ok(refused.includes(408));
  });
});
