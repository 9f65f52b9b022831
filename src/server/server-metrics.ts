import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Controller } from '../controller/controller.js';
import type { CallObserver } from '../scheduler/call-observer.js';
import { BucketHistogram, type HistogramSeries } from './bucket-histogram.js';

/** Seconds, from 50 µs (a ring round trip) to 10 s (a long model). */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

interface LatencyChildren {
  queue: HistogramSeries;
  compute: HistogramSeries;
  total: HistogramSeries;
}

/**
 * The server's Prometheus registry. Call latencies and batch sizes come from the controller's call
 * observer as they happen; counts, queue depths, worker states, restarts and memory are read from
 * Controller.stats() when /metrics is scraped, so they cost the call path nothing.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private controller: Controller | undefined;
  private stopObserving: (() => void) | undefined;
  private readonly latency: { queue: BucketHistogram; compute: BucketHistogram; total: BucketHistogram };
  private readonly batch: BucketHistogram;
  private readonly children = new Map<string, LatencyChildren>();
  private readonly batchChildren = new Map<string, HistogramSeries>();
  /** By route (a constant string), then status: no key is built per request. */
  private readonly answeredCounts = new Map<string, Map<number, number>>();
  private restartsSeen = new Map<string, number>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'caphost_' });
    const histogram = (name: string, help: string) => new BucketHistogram(name, help, 'capability', LATENCY_BUCKETS, this.registry);
    this.latency = {
      queue: histogram('caphost_call_queue_seconds', 'Time a call waited in the controller before a worker took it, by capability request'),
      compute: histogram('caphost_call_compute_seconds', 'Time from handing a call to a worker until it settled (ring, handler, reply), by capability request'),
      total: histogram('caphost_call_total_seconds', 'Time from submission to settlement of a call, by capability request'),
    };
    this.batch = new BucketHistogram('caphost_batch_size', 'Calls handed to a worker together, by capability request', 'capability', BATCH_BUCKETS, this.registry);
    const answered = this.answeredCounts;
    new Counter({
      name: 'caphost_http_requests_total',
      help: 'HTTP requests answered, by route and status code',
      labelNames: ['route', 'status'] as const,
      registers,
      // Counted in a plain map on the request path and handed to prom-client when scraped.
      collect() {
        this.reset();
        for (const [route, byStatus] of answered) {
          for (const [status, n] of byStatus) this.labels({ route, status: String(status) }).inc(n);
        }
      },
    });

    const metrics = this;
    new Counter({
      name: 'caphost_calls_total',
      help: 'Calls settled, by capability request and outcome (OK or the error code)',
      labelNames: ['capability', 'outcome'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        this.reset();
        for (const [capability, c] of Object.entries(stats.capabilities)) {
          this.labels({ capability, outcome: 'OK' }).inc(c.ok);
          for (const [code, n] of Object.entries(c.errors)) this.labels({ capability, outcome: code }).inc(n);
        }
      },
    });
    new Gauge({
      name: 'caphost_queue_depth',
      help: 'Calls waiting in the controller for a worker, by capability request',
      labelNames: ['capability'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        this.reset();
        for (const [capability, c] of Object.entries(stats.capabilities)) this.set({ capability }, c.queued);
      },
    });
    new Gauge({
      name: 'caphost_worker_in_flight',
      help: 'Calls held by each worker replica (in its ring or its handler)',
      labelNames: ['worker'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        this.reset();
        for (const w of stats.workers) this.set({ worker: w.worker }, w.inFlight);
      },
    });
    new Gauge({
      name: 'caphost_worker_up',
      help: '1 while a worker replica runs, 0 while it starts, restarts, or has been given up',
      labelNames: ['worker', 'state'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        this.reset();
        for (const w of stats.workers) this.set({ worker: w.worker, state: w.state }, w.state === 'running' ? 1 : 0);
      },
    });
    new Counter({
      name: 'caphost_worker_restarts_total',
      help: 'Restarts of each worker replica after a crash',
      labelNames: ['worker'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        for (const w of stats.workers) {
          const seen = metrics.restartsSeen.get(w.worker) ?? 0;
          this.labels({ worker: w.worker }).inc(w.restarts - seen);
          metrics.restartsSeen.set(w.worker, w.restarts);
        }
      },
    });
    new Gauge({
      name: 'caphost_device_memory_bytes',
      help: 'Memory the controller owns, by device and use: device buffers in use on the backend (cpu, cuda or metal), and the shared arena (cpu:arena) in use and its capacity',
      labelNames: ['device', 'kind'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        this.reset();
        this.set({ device: stats.device.backend, kind: 'in_use' }, stats.device.bytesInUse);
        this.set({ device: 'cpu:arena', kind: 'in_use' }, stats.arena.inUse);
        this.set({ device: 'cpu:arena', kind: 'capacity' }, stats.arena.bytes);
      },
    });
    new Gauge({
      name: 'caphost_device_buffers',
      help: 'Device buffers alive on the backend (weights, call tensors, worker scratch)',
      labelNames: ['device'] as const,
      registers,
      collect() {
        const stats = metrics.controller?.stats();
        if (stats === undefined) return;
        this.reset();
        this.set({ device: stats.device.backend }, stats.device.buffers);
      },
    });
  }

  /** Starts reading the controller's figures and watching its calls. */
  attach(controller: Controller): void {
    this.controller = controller;
    const observer: CallObserver = {
      settled: (capability, _outcome, queueMs, computeMs, totalMs) => {
        const c = this.children.get(capability) ?? this.latencyChildren(capability);
        const { queue, compute, total } = this.latency;
        queue.observe(c.queue, queueMs / 1000);
        if (computeMs > 0) compute.observe(c.compute, computeMs / 1000);
        total.observe(c.total, totalMs / 1000);
      },
      dispatched: (capability, size) => {
        let child = this.batchChildren.get(capability);
        if (child === undefined) {
          child = this.batch.seriesFor(capability);
          this.batchChildren.set(capability, child);
        }
        this.batch.observe(child, size);
      },
    };
    this.stopObserving = controller.observe(observer);
  }

  private latencyChildren(capability: string): LatencyChildren {
    const { queue, compute, total } = this.latency;
    const c = { queue: queue.seriesFor(capability), compute: compute.seriesFor(capability), total: total.seriesFor(capability) };
    this.children.set(capability, c);
    return c;
  }

  /** Counts one answered HTTP request. */
  answered(route: string, status: number): void {
    let byStatus = this.answeredCounts.get(route);
    if (byStatus === undefined) this.answeredCounts.set(route, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    this.stopObserving?.();
    this.stopObserving = undefined;
  }
}
