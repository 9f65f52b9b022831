/**
 * Probes a device backend library (libcaphost_cuda.so, later the Metal one) in a throwaway
 * child process before the controller dlopens it: a library that crashes at load, or a driver
 * that hangs or faults in init, takes down the probe and not the controller. The child is the
 * native `caphost-backend-probe` (native/tools/backend_probe.c, built next to the library),
 * which loads the library, checks its ABI, calls init() and prints one line of JSON.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ProbedDevice {
  name: string;
  totalMemory: number;
  computeMajor: number;
  computeMinor: number;
  /** CPU: kernel threads; GPU: multiprocessors. */
  threads: number;
  hostVisible: boolean;
}

export type BackendProbe =
  | { ok: true; name: string; devices: ProbedDevice[] }
  /**
   * stage 'init': the library is sound but cannot run here (why is its reason: no driver, no
   * device, driver too old). 'load' | 'symbol' | 'abi': the library is bad. 'probe': the probe
   * itself is missing, crashed, hung or printed something unreadable.
   */
  | { ok: false; stage: 'init' | 'load' | 'symbol' | 'abi' | 'probe'; why: string; status?: number };

export interface ProbeOptions {
  /** The probe executable; default: caphost-backend-probe in the library's folder. */
  probe?: string;
  /** Kill the probe after this long (a driver can hang in init). Default 30 s. */
  timeoutMs?: number;
  /** The probe's environment (default: this process's), e.g. with CAPHOST_CUDA_GEMM=cublas. */
  env?: NodeJS.ProcessEnv;
}

/** Where `npm run build:cuda` puts the CUDA backend and its probe (build/cuda/ in the package). */
export function cudaBuildPaths(): { library: string; probe: string } {
  const dir = new URL('../../../build/cuda/', import.meta.url);
  return {
    library: fileURLToPath(new URL('libcaphost_cuda.so', dir)),
    probe: fileURLToPath(new URL('caphost-backend-probe', dir)),
  };
}

export function probeBackend(library: string, options: ProbeOptions = {}): Promise<BackendProbe> {
  const probe = options.probe ?? library.replace(/[^/]+$/, 'caphost-backend-probe');
  if (!existsSync(library)) return Promise.resolve({ ok: false, stage: 'load', why: `${library} does not exist` });
  if (!existsSync(probe)) return Promise.resolve({ ok: false, stage: 'probe', why: `the probe ${probe} does not exist` });
  return new Promise((resolve) => {
    execFile(probe, [library], { timeout: options.timeoutMs ?? 30_000, encoding: 'utf8', env: options.env ?? process.env }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        const how = err && 'signal' in err && err.signal ? `was killed by ${err.signal}` : `exited with ${err?.code ?? 0}`;
        resolve({ ok: false, stage: 'probe', why: `the probe of ${library} ${how} without a result${stderr ? `: ${stderr.trim()}` : ''}` });
        return;
      }
      resolve(fromJson(parsed, library));
    });
  });
}

function fromJson(v: unknown, library: string): BackendProbe {
  const o = v as Record<string, unknown>;
  if (o && o.ok === true && typeof o.name === 'string' && Array.isArray(o.devices)) {
    const devices = (o.devices as Array<Record<string, unknown>>).map((d) => ({
      name: String(d.name),
      totalMemory: Number(d.totalMemory),
      computeMajor: Number(d.computeMajor),
      computeMinor: Number(d.computeMinor),
      threads: Number(d.threads),
      hostVisible: d.hostVisible === 1,
    }));
    return { ok: true, name: o.name, devices };
  }
  if (o && o.ok === false && typeof o.why === 'string' && ['init', 'load', 'symbol', 'abi'].includes(String(o.stage))) {
    const stage = o.stage as 'init' | 'load' | 'symbol' | 'abi';
    return typeof o.status === 'number' ? { ok: false, stage, why: o.why, status: o.status } : { ok: false, stage, why: o.why };
  }
  return { ok: false, stage: 'probe', why: `the probe of ${library} printed an unreadable result` };
}
