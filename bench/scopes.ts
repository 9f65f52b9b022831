/**
 * Every bench scope, in one table. A later scope ('gpu', 'serve', 'mesh',
 * 'http') is one more entry here. Runners are imported lazily so that a scope
 * whose dependencies are missing (no GPU toolkit, no NATS) cannot break the
 * others, or `--list`.
 */
import type { ScopeRunner } from './suite.js';

export interface Scope {
  description: string;
  /** Runs when no --scope is given. */
  inDefault: boolean;
  run: ScopeRunner;
}

export const SCOPES: Record<string, Scope> = {
  core: {
    description: 'thread-worker calls vs piscina and MessageChannel: latency, throughput, 1 MiB hand-off, idle CPU',
    inDefault: true,
    run: async (ctx) => (await import('./core/suite.js')).runCore(ctx),
  },
  process: {
    description: "'process' workers (sandboxed child) vs a Unix-socket echo and fork + process.send: latency, throughput, start time, idle CPU",
    inDefault: false,
    run: async (ctx) => (await import('./process/suite.js')).runProcess(ctx),
  },
  device: {
    description: 'CPU device backend: GEMM GFLOP/s vs onnxruntime-node MatMul (1 and 2 threads), per-op latency, submission overhead, buffer hand-off',
    inDefault: false,
    run: async (ctx) => (await import('./device/suite.js')).runDevice(ctx),
  },
  http: { description: 'caphost serve (KServe v2 infer over HTTP) vs a bare node:http echo of the same body: p50, requests/s at 64 connections', inDefault: false, run: async (ctx) => (await import('./http/suite.js')).runHttp(ctx) },
  mesh: {
    description: 'remote call between two controllers over NATS (mTLS) vs a raw NATS request-reply echo between the same processes: p50, throughput with calls in flight',
    inDefault: false,
    run: async (ctx) => (await import('./mesh/suite.js')).runMesh(ctx),
  },
  gpu: {
    description: 'the CUDA backend through its library: GEMM TFLOP/s (f32, f16, bf16, 1024³..8192³), command-list submission µs, host↔device copy GB/s; skips without a GPU',
    inDefault: false,
    run: async (ctx) => (await import('./gpu/suite.js')).runGpu(ctx),
  },
  serve: {
    description: 'serving sentence embeddings (6-layer 384-wide BERT, seq 16 and 128) under open-loop Poisson load: caphost with dynamic batching vs onnxruntime-node in-process and in piscina; latency curve, sustained throughput under a p99 bound, event-loop delay',
    inDefault: false,
    run: async (ctx) => (await import('./serve/suite.js')).runServe(ctx),
  },
};

export function defaultScopes(): string[] {
  return Object.keys(SCOPES).filter((name) => SCOPES[name]!.inDefault);
}
