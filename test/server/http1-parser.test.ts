import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Http1Parser, type ParseEvent } from '../../src/server/http1-parser.js';

const limits = { maxHeaderBytes: 1024, maxBodyBytes: 64 };

/** Feeds `parts` one at a time and collects every event, as a connection would. */
function parse(parts: (string | Buffer)[], l = limits): ParseEvent[] {
  const p = new Http1Parser(l);
  const out: ParseEvent[] = [];
  for (const part of parts) {
    p.push(typeof part === 'string' ? Buffer.from(part, 'latin1') : part);
    for (let e = p.next(); e !== null; e = p.next()) out.push(e);
  }
  return out;
}

function requests(events: ParseEvent[]) {
  return events.map((e) => {
    assert.equal(e.kind, 'request', JSON.stringify(e));
    return (e as Extract<ParseEvent, { kind: 'request' }>).request;
  });
}

test('a request with a Content-Length body, split anywhere, comes out whole', () => {
  const raw = 'POST /v2/models/m/infer?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":[1,2]}';
  for (let cut = 1; cut < raw.length; cut += 7) {
    const [r] = requests(parse([raw.slice(0, cut), raw.slice(cut)]));
    assert.equal(r!.method, 'POST');
    assert.equal(r!.url, '/v2/models/m/infer?x=1');
    assert.equal(r!.headers.get('content-type'), 'application/json');
    assert.equal(r!.body.toString(), '{"a":[1,2]}');
    assert.equal(r!.keepAlive, true);
  }
});

test('pipelined requests come out in order; repeated headers are joined', () => {
  const rs = requests(parse(['GET /a HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\nPOST /c HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi']));
  assert.deepEqual(rs.map((r) => r.url), ['/a', '/b', '/c']);
  assert.equal(rs[0]!.headers.get('x-a'), '1, 2');
  assert.deepEqual(rs.map((r) => r.keepAlive), [true, false, false]);
  assert.equal(rs[2]!.minor, 0);
});

test('chunked bodies, with extensions and trailers, in pieces', () => {
  const raw = 'POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: t\r\n\r\nGET /next HTTP/1.1\r\n\r\n';
  for (let step = 1; step <= raw.length; step += 5) {
    const parts: string[] = [];
    for (let i = 0; i < raw.length; i += step) parts.push(raw.slice(i, i + step));
    const rs = requests(parse(parts));
    assert.deepEqual(rs.map((r) => [r.url, r.body.toString()]), [['/x', 'hello world'], ['/next', '']]);
  }
});

test('Expect: 100-continue asks for the go-ahead once, before the body', () => {
  const p = new Http1Parser(limits);
  p.push(Buffer.from('POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n'));
  assert.deepEqual(p.next(), { kind: 'continue' });
  assert.equal(p.next(), null);
  p.push(Buffer.from('abc'));
  const e = p.next();
  assert.equal(e?.kind === 'request' && e.request.body.toString(), 'abc');
});

test('refusals carry the status to answer', () => {
  const status = (raw: string, l = limits) => {
    const [e] = parse([raw], l);
    assert.equal(e?.kind, 'error', JSON.stringify(e));
    return (e as Extract<ParseEvent, { kind: 'error' }>).status;
  };
  assert.equal(status('GARBAGE\r\n\r\n'), 400);
  assert.equal(status('GET / HTTP/2.0\r\n\r\n'), 400);
  assert.equal(status('GET / HTTP/1.1\r\nBad Header\r\n\r\n'), 400);
  assert.equal(status('GET / HTTP/1.1\r\n folded: x\r\n\r\n'), 400);
  // A bare CR or LF inside a header is how a second request gets smuggled into the first.
  assert.equal(status('GET / HTTP/1.1\r\nX-A: 1\rContent-Length: 5\r\n\r\n'), 400);
  assert.equal(status('GET / HTTP/1.1\r\nX-A: 1\nContent-Length: 5\r\n\r\n'), 400);
  assert.equal(status('GET /a b HTTP/1.1\r\n\r\n'), 400);
  assert.equal(status('GET / HTTP/1.10\r\n\r\n'), 400);
  assert.equal(status('POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n'), 400);
  assert.equal(status('POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n'), 400);
  assert.equal(status('POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n'), 400);
  assert.equal(status('POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n'), 501);
  assert.equal(status('POST / HTTP/1.1\r\nExpect: tea\r\n\r\n'), 417);
  assert.equal(status('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 400);
  assert.equal(status(`GET /${'a'.repeat(2000)} HTTP/1.1\r\n`), 431);
  const [big] = parse(['POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n']);
  assert.deepEqual(big, { kind: 'error', status: 413, message: '', tooLarge: 65 });
  const [chunkedBig] = parse(['POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n']);
  assert.deepEqual(chunkedBig, { kind: 'error', status: 413, message: '', tooLarge: 65 });
  // Repeated Content-Length with one value is allowed (RFC 9112 §6.3).
  assert.equal(requests(parse(['POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok']))[0]!.body.toString(), 'ok');
});

test('after a refusal the parser hands out nothing more', () => {
  const p = new Http1Parser(limits);
  p.push(Buffer.from('BAD\r\n\r\nGET / HTTP/1.1\r\n\r\n'));
  assert.equal(p.next()?.kind, 'error');
  assert.equal(p.next(), null);
});

test('a large body arriving in many chunks is joined once', () => {
  const l = { maxHeaderBytes: 1024, maxBodyBytes: 1 << 20 };
  const body = Buffer.alloc(1 << 20, 7);
  const parts: Buffer[] = [Buffer.from(`POST / HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`)];
  for (let i = 0; i < body.length; i += 1000) parts.push(body.subarray(i, i + 1000));
  const concat = Buffer.concat;
  let joins = 0;
  Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
    joins++;
    return concat(list, length);
  }) as typeof Buffer.concat;
  let r;
  try {
    [r] = requests(parse(parts, l));
  } finally {
    Buffer.concat = concat;
  }
  assert.ok(r!.body.equals(body));
  assert.ok(joins <= 2, `the body was joined ${joins} times; chunk by chunk would copy it a thousand times`);
});
