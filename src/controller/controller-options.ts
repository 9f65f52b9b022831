import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { CaphostError, ErrorCode } from '../errors.js';
import { type LogLevel, type Logger, createConsoleLogger, levelRank, parseLogLevel } from '../logger.js';
import { type ChannelConfig, defaultChannelConfig } from '../scheduler/ring-layout.js';
import { type BuiltinProfileName, type SandboxProfile, resolveProfile } from '../isolation/sandbox/sandbox-profile.js';
import { moduleFolderProblem } from '../isolation/sandbox/sandbox-plan.js';
import { requireSandbox } from '../isolation/sandbox/sandbox-support.js';
import { type MeshOptions, type ResolvedMeshOptions, resolveMeshOptions } from '../mesh/mesh-options.js';
import { DEVICE_KINDS, type DeviceKind } from '../device/device-selection.js';

export interface WorkerEntry {
  /** The worker module: a path (relative to the current directory) or a file URL. */
  readonly module: string | URL;
  /**
   * `thread` (default) runs it in a worker_thread of the controller's process: for trusted code.
   * `process` runs it in a sandboxed child process (seccomp-bpf + Landlock on Linux, sandbox-exec
   * on macOS): the security boundary for untrusted code.
   */
  readonly strategy?: 'thread' | 'process';
  /**
   * Process workers only: the sandbox profile, by name ('strict', the default; 'standard',
   * 'landlock-optional', 'permissive') or as a complete custom profile object. Start fails with
   * SANDBOX_UNAVAILABLE when this machine cannot enforce it.
   */
  readonly sandbox?: BuiltinProfileName | SandboxProfile;
  /** Copies of the worker to run; calls go to the least loaded. Default 1. */
  readonly replicas?: number;
  /** V8 heap limits for each worker (worker_threads resourceLimits; a process worker gets the heap sizes as Node flags). */
  readonly resourceLimits?: ResourceLimits;
  /** Hard cap on calls held by one replica at once (its ring). Default: the ring's slot count. */
  readonly maxInFlight?: number;
  /** How long setup may take before start fails. Default 30 000 ms. */
  readonly startTimeoutMs?: number;
  /** A safetensors file the controller loads (once, read-only) and grants to every replica: `ctx.weights`. */
  readonly weights?: string | URL;
  /** Plain data (JSON) the worker's setup receives as ctx.config: model settings, file contents, flags. */
  readonly config?: unknown;
}

export interface DeviceOptions {
  readonly kind?: DeviceKind;
  /** CPU backend: threads its kernels use (default: every hardware thread). */
  readonly cpuThreads?: number;
}

export interface RestartPolicy {
  /** First delay before restarting a crashed worker. Default 100 ms; doubles per crash. */
  readonly initialDelayMs?: number;
  /** Longest delay between restarts. Default 5 000 ms. */
  readonly maxDelayMs?: number;
  /** Crashes within `windowMs` after which the replica is given up. Default 5. */
  readonly maxCrashes?: number;
  /** Default 60 000 ms. */
  readonly windowMs?: number;
}

export interface ControllerOptions {
  readonly workers: readonly WorkerEntry[];
  /** Calls that may wait per capability before QUEUE_FULL. Default 10 000. */
  readonly maxQueue?: number;
  /** How long a handler may ignore an aborted ctx.signal before its worker is recycled. Default 1 000 ms. */
  readonly abortGraceMs?: number;
  /** Bytes of shared memory for zero-copy buffers (controller.arena). Default 64 MiB; 0 turns it off. */
  readonly arenaBytes?: number;
  /** Ring geometry per worker. */
  readonly transport?: Partial<ChannelConfig>;
  /** Work each replica's ring should hold ahead of its handler, in µs; bounds how long a high-priority call waits behind queued work. Default 1 000. */
  readonly ringBudgetUs?: number;
  readonly restart?: RestartPolicy;
  /** A logger, or a level for the built-in stderr logger. Default: CAPHOST_LOG or 'info'. */
  readonly logger?: Logger | LogLevel;
  /** The device backend: 'auto' (default: cuda, then metal, then cpu), or one by name, which fails with DEVICE_UNAVAILABLE when absent. */
  readonly device?: DeviceKind | DeviceOptions;
  /** Join a mesh of controllers over NATS (mTLS): serve peers' calls and route to their capabilities. */
  readonly mesh?: MeshOptions;
}

interface ResolvedEntryBase {
  readonly module: URL;
  readonly replicas: number;
  readonly resourceLimits: ResourceLimits | undefined;
  readonly maxInFlight: number;
  readonly startTimeoutMs: number;
  /** Absolute path of the entry's safetensors weights, if any. */
  readonly weights: string | undefined;
  /** The entry's config as JSON text (validated once), or undefined. */
  readonly config: string | undefined;
}

export type ResolvedWorkerEntry = ResolvedEntryBase &
  ({ readonly strategy: 'thread'; readonly sandbox?: undefined } | { readonly strategy: 'process'; readonly sandbox: SandboxProfile });

export interface ResolvedOptions {
  readonly workers: readonly ResolvedWorkerEntry[];
  readonly maxQueue: number;
  readonly abortGraceMs: number;
  readonly arenaBytes: number;
  readonly channel: ChannelConfig;
  readonly ringBudgetUs: number;
  readonly restart: Required<RestartPolicy>;
  readonly logger: Logger;
  readonly logLevel: LogLevel;
  readonly device: { readonly kind: DeviceKind; readonly cpuThreads: number };
  readonly mesh: ResolvedMeshOptions | undefined;
}

function invalid(option: string, expected: string, value: unknown): CaphostError {
  return new CaphostError(ErrorCode.INVALID_ARGUMENT, `options.${option} must be ${expected}, got ${JSON.stringify(value) ?? String(value)}`, {
    details: { option },
  });
}

function integer(option: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(option, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

function moduleUrl(option: string, value: unknown): URL {
  if (value instanceof URL) {
    if (value.protocol !== 'file:') throw invalid(option, 'a path or a file: URL', value.href);
    return value;
  }
  if (typeof value !== 'string' || value.length === 0) throw invalid(option, 'a path or a file: URL', value);
  if (value.startsWith('file:')) return new URL(value);
  return pathToFileURL(isAbsolute(value) ? value : resolve(value));
}

/** The entry's profile, validated (what this machine can enforce is checked once every option is). */
function sandboxProfile(option: string, value: unknown, module: URL): SandboxProfile {
  let profile: SandboxProfile;
  try {
    profile = resolveProfile(value as BuiltinProfileName | SandboxProfile | undefined);
  } catch (err) {
    // The profile validator names its own fields from 'profile'; name them from the entry instead.
    if (!(err instanceof CaphostError) || err.code !== ErrorCode.INVALID_ARGUMENT) throw err;
    const rename = (s: string): string => s.replace(/^profile/, `options.${option}`);
    const inner = String(err.details?.['option'] ?? 'profile');
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, rename(err.message), { cause: err, details: { option: rename(inner).replace(/^options\./, '') } });
  }
  const folder = moduleFolderProblem(dirname(fileURLToPath(module)));
  if (folder !== undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `options.${option.replace(/sandbox$/, 'module')}: ${folder}`, { details: { option } });
  return profile;
}

const MAX_CONFIG_BYTES = 1 << 20;

/** A worker's config crosses to thread and process workers alike, so it must be plain JSON. */
function configJson(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw invalid(option, `plain JSON data (${(err as Error).message})`, '[unserialisable]');
  }
  if (text === undefined) throw invalid(option, 'plain JSON data', String(value));
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw invalid(option, `at most ${MAX_CONFIG_BYTES} bytes of JSON (pass large data as weights or files)`, `${Buffer.byteLength(text)} bytes`);
  return text;
}

function resolveDevice(value: ControllerOptions['device']): ResolvedOptions['device'] {
  const spec = typeof value === 'string' || value === undefined ? { kind: value } : value;
  if (spec === null || typeof spec !== 'object') throw invalid('device', `one of ${DEVICE_KINDS.join(', ')} or { kind, cpuThreads }`, value);
  const kind = spec.kind ?? 'auto';
  if (!DEVICE_KINDS.includes(kind)) throw invalid(typeof value === 'string' ? 'device' : 'device.kind', `one of ${DEVICE_KINDS.join(', ')}`, kind);
  return { kind, cpuThreads: integer('device.cpuThreads', spec.cpuThreads, 0, 0, 256) };
}

/** Validates every option eagerly, so mistakes surface at start with the option's name. */
export function resolveOptions(options: ControllerOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw invalid('', 'an object', options);
  // A mesh node may run no workers of its own and only call its peers'.
  if (!Array.isArray(options.workers) || (options.workers.length === 0 && options.mesh === undefined)) throw invalid('workers', 'a non-empty array of { module, strategy, replicas }', options.workers);
  const transport = options.transport ?? {};
  const slots = integer('transport.slots', transport.slots, defaultChannelConfig.slots, 2, 65536);
  if (!isPowerOfTwo(slots)) throw invalid('transport.slots', 'a power of two', slots);
  const slotBytes = integer('transport.slotBytes', transport.slotBytes, defaultChannelConfig.slotBytes, 128, 1 << 20);
  if (slotBytes % 64 !== 0) throw invalid('transport.slotBytes', 'a multiple of 64', slotBytes);
  const overflowBytes = integer('transport.overflowBytes', transport.overflowBytes, defaultChannelConfig.overflowBytes, 4096, 1 << 30);
  if (!isPowerOfTwo(overflowBytes)) throw invalid('transport.overflowBytes', 'a power of two', overflowBytes);
  const workers = options.workers.map((entry, i): ResolvedWorkerEntry => {
    const at = `workers[${i}]`;
    if (entry === null || typeof entry !== 'object') throw invalid(at, 'an object { module, strategy, replicas }', entry);
    const strategy = entry.strategy ?? 'thread';
    if (strategy !== 'thread' && strategy !== 'process') throw invalid(`${at}.strategy`, '"thread" or "process"', strategy);
    if (entry.resourceLimits !== undefined && (entry.resourceLimits === null || typeof entry.resourceLimits !== 'object')) {
      throw invalid(`${at}.resourceLimits`, 'an object of worker_threads resource limits', entry.resourceLimits);
    }
    const module = moduleUrl(`${at}.module`, entry.module);
    let placement: { strategy: 'thread' } | { strategy: 'process'; sandbox: SandboxProfile };
    if (strategy === 'thread') {
      if (entry.sandbox !== undefined) {
        throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `options.${at}.sandbox applies to strategy "process" only: a thread worker shares the controller's process and is not sandboxed`, { details: { option: `${at}.sandbox` } });
      }
      placement = { strategy };
    } else {
      placement = { strategy, sandbox: sandboxProfile(`${at}.sandbox`, entry.sandbox, module) };
    }
    return {
      module,
      ...placement,
      replicas: integer(`${at}.replicas`, entry.replicas, 1, 1, 256),
      resourceLimits: entry.resourceLimits,
      maxInFlight: integer(`${at}.maxInFlight`, entry.maxInFlight, slots, 1, slots),
      startTimeoutMs: integer(`${at}.startTimeoutMs`, entry.startTimeoutMs, 30_000, 1),
      weights: entry.weights === undefined ? undefined : fileURLToPath(moduleUrl(`${at}.weights`, entry.weights)),
      config: configJson(`${at}.config`, entry.config),
    };
  });
  const restart = options.restart ?? {};
  const logLevel = typeof options.logger === 'string' ? options.logger : parseLogLevel(process.env['CAPHOST_LOG'], 'info');
  if (!(logLevel in levelRank)) throw invalid('logger', 'a Logger or one of debug, info, warn, error, silent', options.logger);
  const logger = options.logger !== undefined && typeof options.logger === 'object' ? options.logger : createConsoleLogger(logLevel);
  const resolved: ResolvedOptions = {
    workers,
    maxQueue: integer('maxQueue', options.maxQueue, 10_000, 0),
    abortGraceMs: integer('abortGraceMs', options.abortGraceMs, 1_000, 0),
    arenaBytes: integer('arenaBytes', options.arenaBytes, 64 * 1024 * 1024, 0, 2 ** 31),
    channel: { slots, slotBytes, overflowBytes },
    ringBudgetUs: integer('ringBudgetUs', options.ringBudgetUs, 1_000, 1),
    restart: {
      initialDelayMs: integer('restart.initialDelayMs', restart.initialDelayMs, 100, 0),
      maxDelayMs: integer('restart.maxDelayMs', restart.maxDelayMs, 5_000, 0),
      maxCrashes: integer('restart.maxCrashes', restart.maxCrashes, 5, 1),
      windowMs: integer('restart.windowMs', restart.windowMs, 60_000, 1),
    },
    logger,
    logLevel,
    device: resolveDevice(options.device),
    mesh: options.mesh === undefined ? undefined : resolveMeshOptions(options.mesh),
  };
  // Last, so a typo elsewhere is not hidden behind it, and before anything is spawned.
  workers.forEach((entry, i) => {
    if (entry.strategy === 'process') requireSandbox(entry.sandbox, `options.workers[${i}].sandbox`);
  });
  return resolved;
}
