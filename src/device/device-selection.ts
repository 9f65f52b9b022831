/**
 * Which backend the controller drives: `device: 'auto' | 'cpu' | 'cuda' | 'metal'`. GPU
 * backends are libraries built beside the addons (build/cuda/libcaphost_cuda.so by
 * npm run build:cuda; build/metal/libcaphost_metal.dylib by npm run build:metal on macOS), loaded on demand so that caphost installs and runs
 * where no GPU toolkit exists. A GPU library is first opened in a throwaway child process: a
 * broken driver that would crash the process it loads in takes the probe down, not the
 * controller. 'auto' walks cuda, metal, then cpu, and keeps the reason each one was passed over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CaphostError, ErrorCode } from '../errors.js';
import { cudaBuildPaths } from './backend-probe.js';
import { loadDeviceBinding, packageRoot, type DeviceBinding, type NativeBackendInfo } from './device-binding.js';

export type DeviceKind = 'auto' | 'cpu' | 'cuda' | 'metal';
export const DEVICE_KINDS: readonly DeviceKind[] = ['auto', 'cpu', 'cuda', 'metal'];

export interface DeviceChoice {
  readonly backend: NativeBackendInfo;
  /** What was asked for. */
  readonly requested: DeviceKind;
  /** Why the backend was chosen, and why each one before it was passed over. */
  readonly reason: string;
  readonly passedOver: readonly { readonly backend: string; readonly reason: string }[];
}

const PROBE_TIMEOUT_MS = 20_000;

/** Where a GPU backend's library is expected (an environment variable may point elsewhere). */
export function backendLibraryPath(kind: 'cuda' | 'metal'): string {
  const override = process.env[kind === 'cuda' ? 'CAPHOST_CUDA_LIBRARY' : 'CAPHOST_METAL_LIBRARY'];
  if (override !== undefined && override !== '') return override;
  return kind === 'cuda' ? cudaBuildPaths().library : join(packageRoot(), 'build', 'metal', 'libcaphost_metal.dylib');
}

/** Probe answers by library path: a library does not change under a running process. */
const probed = new Map<string, string | null>();

/** Opens the library in a child first (once per process); returns null when it is usable, else the reason. */
function probe(kind: 'cuda' | 'metal', path: string): string | null {
  if (probed.has(path)) return probed.get(path)!;
  const answer = probeOnce(kind, path);
  // A missing library may be built later in the process's life; only a probe that ran is kept.
  if (existsSync(path)) probed.set(path, answer);
  return answer;
}

function probeOnce(kind: 'cuda' | 'metal', path: string): string | null {
  if (kind === 'cuda' && process.platform !== 'linux') return `CUDA backend is built for Linux only (this is ${process.platform})`;
  if (kind === 'metal' && process.platform !== 'darwin') return `Metal needs macOS (this is ${process.platform})`;
  if (!existsSync(path)) {
    return kind === 'cuda'
      ? `no CUDA backend library at ${path} (it is built by npm install when nvcc is found; run npm run build:cuda)`
      : `no Metal backend library at ${path}`;
  }
  const addon = join(packageRoot(), 'build', 'Release', 'caphost_device.node');
  const script = `const d=require(${JSON.stringify(addon)});try{const b=d.openBackend(${JSON.stringify(path)});process.stdout.write(JSON.stringify({ok:true,devices:b.devices.length}))}catch(e){process.stdout.write(JSON.stringify({ok:false,reason:String(e&&e.message||e)}))}`;
  const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS, env: process.env });
  if (result.error !== undefined) return `probing ${path} failed: ${result.error.message}`;
  if (result.status !== 0) {
    const how = result.signal !== null ? `was killed by ${result.signal}` : `exited with status ${result.status}`;
    return `probing ${path} crashed the probe process (it ${how}): ${(result.stderr ?? '').trim().slice(-300)}`;
  }
  try {
    const answer = JSON.parse(result.stdout) as { ok: boolean; reason?: string };
    return answer.ok ? null : (answer.reason ?? 'unknown failure');
  } catch {
    return `probing ${path} gave no answer`;
  }
}

function openGpu(binding: DeviceBinding, kind: 'cuda' | 'metal'): NativeBackendInfo | string {
  const path = backendLibraryPath(kind);
  const why = probe(kind, path);
  if (why !== null) return why;
  try {
    return binding.openBackend(path);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function chooseDevice(requested: DeviceKind = 'auto', binding: DeviceBinding = loadDeviceBinding()): DeviceChoice {
  if (!DEVICE_KINDS.includes(requested)) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `device must be one of ${DEVICE_KINDS.join(', ')}, got ${String(requested)}`);
  }
  if (requested === 'cpu') return { backend: binding.openBackend('cpu'), requested, reason: 'asked for cpu', passedOver: [] };
  if (requested === 'cuda' || requested === 'metal') {
    const opened = openGpu(binding, requested);
    if (typeof opened === 'string') {
      throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, `device '${requested}' is unavailable: ${opened}`, { details: { device: requested } });
    }
    return { backend: opened, requested, reason: `asked for ${requested}`, passedOver: [] };
  }
  const passedOver: { backend: string; reason: string }[] = [];
  for (const kind of ['cuda', 'metal'] as const) {
    const opened = openGpu(binding, kind);
    if (typeof opened !== 'string') {
      return { backend: opened, requested, reason: `auto: ${kind} is available (${opened.devices[0]?.name ?? 'device 0'})`, passedOver };
    }
    passedOver.push({ backend: kind, reason: opened });
  }
  return { backend: binding.openBackend('cpu'), requested, reason: 'auto: no GPU backend is available, so the CPU', passedOver };
}
