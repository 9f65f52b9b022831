/**
 * Scope `gpu`: the GPU backend measured directly through its library by the native bench
 * driver (native/tools/bench.cc, built next to the library): GEMM TFLOP/s for f32, f16 and
 * bf16 at 1024³..8192³, the round trip and host cost of submitting a command list, and
 * host↔device copy GB/s, with the device's name in the results. Without a built library or a
 * usable GPU the suite records why and measures nothing.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cudaBuildPaths, probeBackend } from '../../src/device/backend-probe.js';
import { measureCallLatency } from './call-latency.js';
import { addFigure, newSuite, type Metric, type RunContext, type SuiteResult, type Target } from '../suite.js';

const UNITS: Record<string, Metric['better']> = { 'TFLOP/s': 'higher', 'GB/s': 'higher', 'µs': 'lower' };

// Dense tensor-core peaks (TFLOP/s, f16 = bf16) of cards with an issue target: 50% of peak.
const DENSE_PEAK: Array<[RegExp, number]> = [
  [/H100.*PCIe/i, 756],
  [/H100.*NVL/i, 835],
  [/H100|H200/i, 989],
];

function label(metric: string): string {
  const [kind, a, b] = metric.split('.');
  if (kind === 'gemm') return `GEMM ${a} ${b}³ (out ${a}, f32 accumulation)`;
  if (kind === 'copy') return `copy ${a === 'h2d' ? 'host→device' : 'device→host'} ${b} (pageable host memory)`;
  if (metric === 'submit.roundtrip.1op') return 'command list of 1 op: submit + synchronize';
  if (metric === 'submit.roundtrip.8op') return 'command list of 8 ops: submit + synchronize';
  if (metric === 'submit.host.1op') return 'command list of 1 op: submit alone (host cost)';
  return metric;
}

interface Line {
  kind: 'device' | 'figure' | 'skip' | 'error';
  name?: string;
  backend?: string;
  metric?: string;
  value?: number;
  unit?: string;
  why?: string;
  detail?: Record<string, unknown>;
  [key: string]: unknown;
}

export async function runGpu(ctx: RunContext): Promise<SuiteResult> {
  const { library } = cudaBuildPaths();
  const driver = fileURLToPath(new URL('../../../build/cuda/caphost-backend-bench', import.meta.url));
  const metrics: Metric[] = [];
  const targets: Target[] = [];
  const suite = newSuite({ suite: 'gpu', title: 'gpu: the CUDA backend, measured through its library', subjects: ['cuda'], baselines: [], metrics, targets });

  if (!existsSync(library) || !existsSync(driver)) {
    suite.notes.push('skipped: the CUDA backend is not built here (nvcc was not found at install; npm run build:cuda builds it)');
    return suite;
  }
  const probe = await probeBackend(library);
  if (!probe.ok) {
    suite.notes.push(`skipped: no GPU to measure: ${probe.why}`);
    return suite;
  }
  ctx.log(`gpu: ${probe.devices[0]?.name ?? 'cuda'}: GEMM, submission and copies${ctx.quick ? ' (quick)' : ''}`);
  const runDriver = (args: string[], env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(driver, ctx.quick ? [library, ...args, '--quick'] : [library, ...args], { timeout: 20 * 60_000, maxBuffer: 16 << 20, env }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
  const record = (subject: string, stdout: string): void => {
    for (const text of stdout.split('\n')) {
      if (!text.trim()) continue;
      const line = JSON.parse(text) as Line;
      if (line.kind === 'device' && subject === 'cuda') {
        suite.title = `gpu: ${line.name} (${line.backend}, compute ${line.computeMajor}.${line.computeMinor})`;
        suite.notes.push(`device: ${line.name}, ${(Number(line.totalMemory) / 2 ** 30).toFixed(1)} GiB, ${line.multiprocessors} SMs`);
        for (const [re, peak] of DENSE_PEAK) {
          if (!re.test(String(line.name))) continue;
          for (const d of ['f16', 'bf16']) targets.push({ metric: `gemm.${d}.4096`, subject: 'cuda', op: '>=', threshold: peak / 2 });
          suite.notes.push(`targets: 50% of the ${peak} TFLOP/s dense f16/bf16 peak of this card`);
          break;
        }
        targets.push({ metric: 'submit.roundtrip.1op', subject: 'cuda', op: '<=', threshold: 10 });
      } else if (line.kind === 'figure' && line.metric && typeof line.value === 'number') {
        if (!metrics.some((m) => m.key === line.metric)) {
          metrics.push({ key: line.metric, label: label(line.metric), unit: line.unit ?? '', better: UNITS[line.unit ?? ''] ?? 'higher' });
        }
        addFigure(suite, line.metric, subject, line.value, line.detail);
      } else if (line.kind === 'skip') {
        suite.notes.push(`${subject}: skipped: ${line.why}`);
      } else if (line.kind === 'error') {
        throw new Error(`gpu bench driver (${subject}): ${line.why}`);
      }
    }
  };
  const own = await runDriver([], process.env);
  record('cuda', own.stdout);
  if (own.code !== 0 && own.code !== 2) throw new Error(`gpu bench driver exited with ${own.code}: ${own.stderr.trim()}`);

  // cuBLAS, when this build has the optional path and libcublas loads, as the GEMM baseline.
  const cublasEnv = { ...process.env, CAPHOST_CUDA_GEMM: 'cublas' };
  const cublasProbe = await probeBackend(library, { env: cublasEnv });
  if (cublasProbe.ok) {
    ctx.log('gpu: the same GEMMs through cuBLAS (baseline)');
    const cublas = await runDriver(['--gemm-only'], cublasEnv);
    record('cublas', cublas.stdout);
    if (cublas.code !== 0) throw new Error(`gpu bench driver (cublas) exited with ${cublas.code}: ${cublas.stderr.trim()}`);
    suite.subjects.push('cublas');
    suite.baselines.push('cublas');
  } else {
    suite.notes.push(`no cuBLAS baseline: ${cublasProbe.why}`);
  }

  ctx.log('gpu: capability call whose handler runs a command list, vs the list run directly');
  const call = await measureCallLatency('cuda', ctx.quick);
  const callMetrics: Metric[] = [
    { key: 'call.direct.p50', label: 'command list (scale of 4096 floats) run by the controller, p50', unit: 'µs', better: 'lower' },
    { key: 'call.e2e.p50', label: 'capability call whose thread-worker handler runs that list, p50', unit: 'µs', better: 'lower' },
    { key: 'call.e2e.p99', label: 'the same call, p99', unit: 'µs', better: 'lower' },
    { key: 'call.overKernels.p50', label: 'what the call adds over the list itself (p50 difference)', unit: 'µs', better: 'lower' },
  ];
  metrics.push(...callMetrics);
  addFigure(suite, 'call.direct.p50', 'cuda', call.directP50);
  addFigure(suite, 'call.e2e.p50', 'cuda', call.callP50);
  addFigure(suite, 'call.e2e.p99', 'cuda', call.callP99);
  addFigure(suite, 'call.overKernels.p50', 'cuda', call.callP50 - call.directP50);
  targets.push({ metric: 'call.overKernels.p50', subject: 'cuda', op: '<=', threshold: 20 });
  return suite;
}
