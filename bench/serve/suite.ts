/**
 * Scope `serve`: sentence embeddings served under open-loop Poisson load at rising rates, on a
 * 6-layer, 384-wide random-weight BERT encoder, at sequence lengths 16 and 128:
 *  - caphost: examples/embed-worker (embed.text@1) in a thread worker, dynamic batching on;
 *  - onnxruntime: session.run per request in the application's own process;
 *  - onnxruntime-piscina: session.run per request in piscina workers (one session per thread).
 * Every subject tokenizes with the same WordPiece tokenizer and runs the same network (the ONNX
 * graph scripts/random-bert.ts writes beside the safetensors). Reported: the latency curve (in
 * the notes), the sequences/s each sustains with p99 under the bound, and the main thread's
 * event-loop delay while it serves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHistogram, monitorEventLoopDelay, type IntervalHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { Controller } from '../../src/index.js';
import { makeRandomBert } from '../../scripts/random-bert.js';
import { addFigure, newSuite, type Metric, type RunContext, type SuiteResult, type Target } from '../suite.js';
import { openLoop, type LoadResult } from './open-loop.js';
import { createOrtEmbedder } from './ort-embedder.js';

const MODEL = { layers: 6, hidden: 384, heads: 12, intermediate: 1536, vocabSize: 8192, maxPositions: 512 };
const MAX_TOKENS = 128;
const SUBJECTS = ['caphost', 'onnxruntime', 'onnxruntime-piscina'] as const;
type Subject = (typeof SUBJECTS)[number];

interface Case {
  readonly seq: number;
  /** p99 latency bound for "sustained" throughput. */
  readonly boundMs: number;
  readonly rates: readonly number[];
  readonly quickRates: readonly number[];
  /** Most calls in one caphost batch (CAPHOST_EMBED_BATCH). */
  readonly batch: number;
  /** How long a batch may wait for more calls while a replica is free (CAPHOST_EMBED_QUEUE_DELAY_US). */
  readonly delayUs: number;
}

// The ladders step by at most a third past 100/s and 20/s: with coarser steps a subject's
// "sustained" figure falls to the rung below what it can do (at 4 s per rate, 600/s offers
// 2315 Poisson arrivals, so a pass there reads 579/s and the next rung is 800). At seq 128 the
// ladder steps by 10/s from 80/s: that is where the subjects top out on 2 cores, and with 20/s
// steps two of them both passed 100/s and failed 120/s, which read as a tie at 94/s.
// caphost's batch settings per length: at 16 tokens a pass over 8 sequences costs 0.6x as much
// per sequence as one alone (16 gain little more and take twice as long, which a 50 ms bound
// cannot afford), so batches are worth gathering (without waiting: calls gather while both
// replicas are busy); at 128 tokens a batch costs as much per sequence as single passes and
// only adds to latency, so batches stay small.
const CASES: readonly Case[] = [
  { seq: 16, boundMs: 50, rates: [25, 50, 100, 150, 200, 300, 400, 500, 600, 700, 800, 1000], quickRates: [50, 200, 600], batch: 8, delayUs: 0 },
  { seq: 128, boundMs: 300, rates: [5, 10, 20, 30, 40, 60, 80, 90, 100, 110, 120], quickRates: [5, 20, 60], batch: 2, delayUs: 0 },
];

const METRICS: Metric[] = CASES.flatMap((c): Metric[] => [
  { key: `s${c.seq}.tput`, label: `seq ${c.seq}: sequences/s with p99 ≤ ${c.boundMs} ms`, unit: 'seq/s', better: 'higher' },
  { key: `s${c.seq}.p50.low`, label: `seq ${c.seq}: p50 latency at the lowest rate`, unit: 'ms', better: 'lower' },
  { key: `s${c.seq}.lag.p99`, label: `seq ${c.seq}: main event-loop delay p99 while serving`, unit: 'ms', better: 'lower' },
  { key: `s${c.seq}.lag.max`, label: `seq ${c.seq}: main event-loop delay max while serving`, unit: 'ms', better: 'lower' },
]);

const TARGETS: Target[] = [
  { metric: 's16.tput', subject: 'caphost', op: '>=', threshold: 1.5, against: 'onnxruntime' },
  { metric: 's16.tput', subject: 'caphost', op: '>=', threshold: 1.5, against: 'onnxruntime-piscina' },
  { metric: 's128.tput', subject: 'caphost', op: '>=', threshold: 1.0, against: 'onnxruntime' },
  { metric: 's128.tput', subject: 'caphost', op: '>=', threshold: 1.0, against: 'onnxruntime-piscina' },
  { metric: 's16.lag.p99', subject: 'caphost', op: '<=', threshold: 10 },
  { metric: 's128.lag.p99', subject: 'caphost', op: '<=', threshold: 10 },
];

/** Texts of exactly `seq` tokens ([CLS] and [SEP] included): whole vocabulary words, one token each. */
function textsOf(vocab: readonly string[], seq: number, count: number): string[] {
  const words = vocab.filter((t) => /^[a-z]{2,}$/.test(t));
  let k = seq * 31;
  return Array.from({ length: count }, () => Array.from({ length: seq - 2 }, () => words[(k = (k * 1103515245 + 12345) >>> 0) % words.length]!).join(' '));
}

/** Adds a delay monitor's distribution to `into`, rebuilt from its quantiles (histograms of the two kinds do not add). */
function addSamples(into: RecordableHistogram, from: IntervalHistogram): void {
  const n = from.count;
  for (let i = 0; i < n; i++) into.record(Math.max(1, Math.round(from.percentile((100 * (i + 0.5)) / n))));
  if (n > 0) into.record(Math.max(1, from.max));
}

export async function runServe(ctx: RunContext): Promise<SuiteResult> {
  const suite = newSuite({ suite: 'serve', title: 'serving embeddings: caphost (dynamic batching) vs onnxruntime-node in-process and in piscina', subjects: [...SUBJECTS], baselines: ['onnxruntime', 'onnxruntime-piscina'], metrics: METRICS, targets: TARGETS });
  const dir = await mkdtemp(join(tmpdir(), 'caphost-serve-'));
  const durationMs = ctx.quick ? 1000 : 4000;
  const startLoad = loadavg().map((l) => l.toFixed(2)).join(' ');
  const threads = availableParallelism();
  let controller: Controller | undefined;
  let pool: Piscina | undefined;
  let ort: Awaited<ReturnType<typeof createOrtEmbedder>> | undefined;
  try {
    ctx.log('serve: writing the model (6 layers, 384 wide)');
    const model = await makeRandomBert(dir, MODEL, 3);
    process.env['CAPHOST_EMBED_MODEL'] = dir;
    process.env['CAPHOST_EMBED_MAX_TOKENS'] = String(MAX_TOKENS);
    // As piscina: one worker thread per hardware thread, each running its kernels on itself
    // alone (on a small shared VM, splitting small ops over threads costs more than it gives).
    const startCaphost = async (kase: Case): Promise<Controller> => {
      process.env['CAPHOST_EMBED_BATCH'] = String(kase.batch);
      process.env['CAPHOST_EMBED_QUEUE_DELAY_US'] = String(kase.delayUs);
      return Controller.start({
        logger: 'warn',
        device: { kind: 'cpu', cpuThreads: 1 },
        workers: [{ module: new URL('../../examples/embed-worker/embed-worker.js', import.meta.url), strategy: 'thread', replicas: threads, weights: model.files.safetensors }],
      });
    };
    ort = await createOrtEmbedder(dir, MAX_TOKENS, threads);
    pool = new Piscina({ filename: fileURLToPath(new URL('./ort-piscina-worker.js', import.meta.url)), workerData: { dir, maxTokens: MAX_TOKENS }, minThreads: threads, maxThreads: threads });
    const o = ort;
    const p = pool;
    const senders: Record<Subject, (text: string) => Promise<unknown>> = {
      caphost: (text) => controller!.call('embed.text@1', { texts: [text] }),
      onnxruntime: (text) => o.embed(text),
      'onnxruntime-piscina': (text) => p.run(text),
    };
    suite.notes.push(`model: BERT-style, ${MODEL.layers} layers, hidden ${MODEL.hidden}, ${MODEL.heads} heads, intermediate ${MODEL.intermediate}, random weights; ${threads} hardware threads`);
    suite.notes.push(`caphost: ${threads} thread-worker replicas, CPU device with 1 kernel thread each, batch ${CASES.map((c) => `{ maxSize ${c.batch}, maxQueueDelayUs ${c.delayUs} } at seq ${c.seq}`).join(', ')}; onnxruntime: intraOpNumThreads ${threads}; piscina: ${threads} threads, 1 intra-op thread each`);
    suite.notes.push(`open loop: Poisson arrivals, ${durationMs} ms per rate; latency from each request's scheduled arrival; a rate is 'sustained' when p99 ≤ the bound and nothing failed`);
    let served = 0;
    for (const kase of CASES) {
      await controller?.close();
      controller = await startCaphost(kase);
      const texts = textsOf(model.vocab, kase.seq, 64);
      const rates = ctx.quick ? kase.quickRates : kase.rates;
      // The subjects take turns at each rate, so that on a shared machine they meet the same
      // background load rather than one subject meeting a busy minute alone.
      interface Climb {
        readonly lag: RecordableHistogram;
        readonly curve: LoadResult[];
        best: number;
        over: number;
        done: boolean;
      }
      const climbs = new Map<Subject, Climb>();
      for (const subject of SUBJECTS) {
        for (let i = 0; i < 8; i++) await senders[subject](texts[i % texts.length]!);
        climbs.set(subject, { lag: createHistogram(), curve: [], best: 0, over: 0, done: false });
      }
      for (const rate of rates) {
        for (const subject of SUBJECTS) {
          const climb = climbs.get(subject)!;
          if (climb.done) continue;
          const send = senders[subject];
          // A delay monitor per run: one re-enabled later would count the time it was off as a delay.
          const lag = monitorEventLoopDelay({ resolution: 1 });
          lag.enable();
          const r = await openLoop(rate, durationMs, (i) => send(texts[i % texts.length]!));
          lag.disable();
          addSamples(climb.lag, lag);
          climb.curve.push(r);
          ctx.log(`serve s${kase.seq} ${subject} ${rate}/s: achieved ${r.achieved.toFixed(1)}/s p50 ${r.p50Ms.toFixed(1)} ms p99 ${r.p99Ms.toFixed(1)} ms failed ${r.failed}`);
          if (r.p99Ms <= kase.boundMs && r.failed === 0) climb.best = Math.max(climb.best, r.achieved);
          // Past saturation every higher rate only queues more: stop climbing once the subject falls
          // behind the offered rate, or its p99 passes 4x the bound at two rates running (one such
          // rate can be another process's burst on a shared machine).
          climb.over = r.p99Ms > 4 * kase.boundMs ? climb.over + 1 : 0;
          climb.done = climb.over >= 2 || r.achieved < 0.7 * rate;
          // Let queues drain before the next subject starts.
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
      }
      for (const subject of SUBJECTS) {
        const { lag, curve, best } = climbs.get(subject)!;
        addFigure(suite, `s${kase.seq}.tput`, subject, best);
        addFigure(suite, `s${kase.seq}.p50.low`, subject, curve[0]!.p50Ms);
        addFigure(suite, `s${kase.seq}.lag.p99`, subject, lag.percentile(99) / 1e6);
        addFigure(suite, `s${kase.seq}.lag.max`, subject, lag.max / 1e6);
        suite.notes.push(`s${kase.seq} ${subject}: ${curve.map((r) => `${r.offered}/s→${r.achieved.toFixed(0)}/s p50 ${r.p50Ms.toFixed(1)} p99 ${Number.isFinite(r.p99Ms) ? r.p99Ms.toFixed(1) : '∞'} ms`).join(' | ')}`);
      }
      served += controller.stats().capabilities['embed.text@1']?.ok ?? 0;
    }
    suite.notes.push(`caphost served ${served} calls`);
    suite.notes.push(`load average (1, 5, 15 min) at the start ${startLoad}, at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}: other processes on the machine share its cores`);
  } finally {
    await controller?.close();
    await pool?.destroy();
    await ort?.release();
    delete process.env['CAPHOST_EMBED_MODEL'];
    delete process.env['CAPHOST_EMBED_MAX_TOKENS'];
    delete process.env['CAPHOST_EMBED_BATCH'];
    delete process.env['CAPHOST_EMBED_QUEUE_DELAY_US'];
    await rm(dir, { recursive: true, force: true });
  }
  return suite;
}
