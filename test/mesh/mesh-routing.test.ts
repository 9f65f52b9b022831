/**
 * Three controller processes on a cluster of two nats-servers (random loopback ports, mTLS):
 * a (no workers, on server 1) calls b (server 2) and c (server 1).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type NatsServer, natsServerOrReason, startCluster } from './nats-server.js';
import { NodeProcess, type NodeProcessOptions, writeClusterCa } from './mesh-processes.js';

const nats = natsServerOrReason();
const HEARTBEAT_MS = 200;

describe('mesh of three controllers over two NATS servers', { skip: 'reason' in nats ? nats.reason : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'caphost-mesh-'));
  let servers: [NatsServer, NatsServer];
  const nodes: NodeProcess[] = [];
  let a: NodeProcess;
  let b: NodeProcess;
  let c: NodeProcess;
  let startNode: (node: string, server: NatsServer, workers: boolean) => Promise<NodeProcess>;

  before(async () => {
    const ca = await writeClusterCa(join(dir, 'ca'));
    servers = await startCluster((nats as { path: string }).path, ca, join(dir, 'nats'));
    startNode = async (node, server, workers) => {
      const options: NodeProcessOptions = { node, servers: [server.url], caDir: join(dir, 'ca'), stateDir: join(dir, node), workers, heartbeatMs: HEARTBEAT_MS, idempotent: ['mesh.sleep@1'] };
      const started = await NodeProcess.start(options);
      nodes.push(started);
      return started;
    };
    [a, b, c] = await Promise.all([startNode('a', servers[0], false), startNode('b', servers[1], true), startNode('c', servers[0], true)]);
    await Promise.all([a.waitForPeers(['b', 'c']), b.waitForPeers(['c']), c.waitForPeers(['b'])]);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await Promise.all(servers?.map((s) => s.stop()) ?? []);
    rmSync(dir, { recursive: true, force: true });
  });

  test('routes to remote nodes after local providers, spreading calls in flight by load, bytes inline', async () => {
    const data = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
    const echo = await a.call('mesh.echo@1', { text: 'hello', data }, { deadlineMs: 5000 });
    assert.equal(echo.ok, true, JSON.stringify(echo.error));
    assert.ok(['b', 'c'].includes(echo.value!['node'] as string));
    assert.deepEqual(new Uint8Array(echo.value!['data'] as Uint8Array), data);
    // b has the capability itself: local first, nothing sent.
    const local = await b.call('mesh.echo@1', { text: 'local' });
    assert.equal(local.value!['node'], 'b');
    assert.deepEqual((await b.stats()).mesh?.sent, {});
    // Ten calls in flight at once: the least loaded node takes each, so both serve.
    const many = await Promise.all(Array.from({ length: 10 }, (_, i) => a.call('mesh.sleep@1', { ms: 100, text: String(i) }, { deadlineMs: 5000 })));
    assert.ok(many.every((m) => m.ok));
    const servedBy = new Set(many.map((m) => m.value!['node']));
    assert.deepEqual([...servedBy].sort(), ['b', 'c']);
    // The origin of the calls is recorded where they ran.
    const [statsB, statsC] = await Promise.all([b.stats(), c.stats()]);
    assert.ok((statsB.mesh?.served['a'] ?? 0) + (statsC.mesh?.served['a'] ?? 0) >= 11);
    // a offers nothing; what it lists comes from its peers.
    const capabilities = (await a.stats()).mesh!.peers.flatMap((p) => p.capabilities);
    assert.ok(capabilities.includes('mesh.only-b@1.0') && capabilities.includes('mesh.only-c@1.0'));
  });

  test('tensors travel inline both ways', async () => {
    const doubled = await a.call('mesh.double@1', { x: { dtype: 'f32', shape: [2, 2], data: new Float32Array([1, -2, 3.5, 0]) } }, { deadlineMs: 5000 });
    assert.equal(doubled.ok, true, JSON.stringify(doubled.error));
    const x = doubled.value!['x'] as { dtype: string; shape: number[]; data: Float32Array };
    assert.equal(x.dtype, 'f32');
    assert.deepEqual([...x.shape], [2, 2]);
    assert.deepEqual([...x.data], [2, -4, 7, 0]);
    assert.ok(['b', 'c'].includes(doubled.value!['node'] as string));
  });

  test('errors cross the wire typed, with the node that raised them', async () => {
    const failed = await a.call('mesh.fail@1', {});
    assert.equal(failed.error?.code, 'HANDLER_ERROR');
    assert.ok(['b', 'c'].includes(failed.error?.details?.['node'] as string));
    const missing = await a.call('mesh.nothing@1', {});
    assert.equal(missing.error?.code, 'CAPABILITY_NOT_FOUND');
    const only = await a.call('mesh.only-b@1', { text: 'x' });
    assert.equal(only.value?.['node'], 'b');
  });

  test('deadlines and cancellation cross the wire and abort the remote handler', async () => {
    const abortsBefore = await totalAborts();
    const late = await a.call('mesh.sleep@1', { ms: 10_000 }, { deadlineMs: 300 });
    assert.equal(late.error?.code, 'DEADLINE_EXCEEDED');
    assert.ok(late.ms < 1500, `settled after ${late.ms} ms`);
    const cancelled = await a.call('mesh.sleep@1', { ms: 10_000 }, { cancelAfterMs: 100 });
    assert.equal(cancelled.error?.code, 'CANCELLED');
    assert.ok(cancelled.ms < 1500, `settled after ${cancelled.ms} ms`);
    // Both handlers saw their ctx.signal abort on the node that ran them.
    const until = Date.now() + 5000;
    while ((await totalAborts()) < abortsBefore + 2) {
      assert.ok(Date.now() < until, 'the remote handlers were not aborted');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  async function totalAborts(): Promise<number> {
    const counts = await Promise.all([b, c].map((n) => n.call('mesh.aborts@1', {})));
    return counts.reduce((sum, answer) => sum + ((answer.value?.['count'] as number | undefined) ?? 0), 0);
  }

  test('a node killed mid-call: idempotent calls fail over within their deadline, others fail WORKER_CRASHED, none settles twice', async () => {
    const retriedBefore = (await a.stats()).mesh!.retried;
    const sleeps = Array.from({ length: 6 }, (_, i) => a.call('mesh.sleep@1', { ms: 1500, text: `s${i}` }, { deadlineMs: 10_000 }));
    const works = Array.from({ length: 4 }, (_, i) => a.call('mesh.work@1', { ms: 1500, text: `w${i}` }, { deadlineMs: 10_000 }));
    // Let them reach the nodes, then kill c outright.
    const until = Date.now() + 5000;
    while (((await a.stats()).mesh?.peers.find((p) => p.node === 'c')?.inFlight ?? 0) < 2) {
      assert.ok(Date.now() < until, 'calls never reached node c');
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.kill();
    const [slept, worked] = await Promise.all([Promise.all(sleeps), Promise.all(works)]);
    for (const answer of slept) {
      assert.equal(answer.ok, true, JSON.stringify(answer.error));
      assert.equal(answer.value!['node'], 'b');
      assert.ok(answer.ms < 10_000);
    }
    for (const answer of worked) {
      if (answer.ok) assert.equal(answer.value!['node'], 'b');
      else {
        assert.equal(answer.error?.code, 'WORKER_CRASHED');
        assert.equal(answer.error?.details?.['node'], 'c');
        assert.ok(answer.ms < 10_000);
      }
    }
    // c held at least two calls: each was either retried on b (sleep) or failed (work).
    const crashed = worked.filter((w) => !w.ok).length;
    const retried = (await a.stats()).mesh!.retried - retriedBefore;
    assert.ok(crashed + retried >= 2, `crashed ${crashed}, retried ${retried}`);
    assert.equal(a.duplicates, 0);
    assert.ok(!(await a.stats()).mesh!.peers.some((p) => p.node === 'c'), 'c is still in the table');
  });

  test('no responders: a call to a node that just died fails CAPABILITY_UNAVAILABLE at once', async () => {
    const d = await startNode('d', servers[0], true);
    await a.waitForPeers(['d']);
    await d.kill();
    // Well before the heartbeat timeout (3 x 200 ms): a still lists d.
    await new Promise((r) => setTimeout(r, 50));
    const answer = await a.call('mesh.only-d@1', { text: 'x' }, { deadlineMs: 5000 });
    assert.equal(answer.error?.code, 'CAPABILITY_UNAVAILABLE', JSON.stringify(answer));
    assert.ok(answer.ms < 300, `took ${answer.ms} ms`);
    assert.match(answer.error!.message, /no responders|left/);
  });

  test('a node whose own event loop stalled does not take its peers for dead', async () => {
    // A call sent to b, then a stops running for longer than three heartbeats (a long GC pause,
    // a paused VM). b's heartbeats and its reply wait unread in a's socket meanwhile.
    const call = a.call('mesh.only-b@1', { text: 'stalled' }, { deadlineMs: 10_000 });
    await a.stall(6 * HEARTBEAT_MS);
    const answer = await call;
    assert.equal(answer.ok, true, JSON.stringify(answer.error));
    assert.equal(answer.value!['node'], 'b');
    assert.ok((await a.stats()).mesh!.peers.some((p) => p.node === 'b'), 'a dropped b');
  });

  test('a lost NATS connection reconnects; calls meanwhile fail fast or finish within their deadline', async () => {
    // a is on server 1; stopping it sends a to server 2, which it learnt from the cluster.
    await servers[0].stop();
    const answers = [];
    const until = Date.now() + 8000;
    let recovered = false;
    while (Date.now() < until) {
      const answer = await a.call('mesh.echo@1', { text: 'during' }, { deadlineMs: 1000 });
      answers.push(answer);
      assert.ok(answer.ms < 1500, `a call took ${answer.ms} ms`);
      if (!answer.ok) assert.ok(['CAPABILITY_UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(answer.error!.code), JSON.stringify(answer.error));
      if (answer.ok && answers.some((x) => !x.ok)) {
        recovered = true;
        break;
      }
      if (answer.ok && answers.length > 20) {
        recovered = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(recovered, `calls did not recover: ${JSON.stringify(answers.slice(-3))}`);
    const mesh = (await a.stats()).mesh!;
    assert.equal(mesh.connected, true);
    assert.ok(mesh.reconnects >= 1, 'a never reconnected');
    assert.equal(a.duplicates, 0);
  });
});
