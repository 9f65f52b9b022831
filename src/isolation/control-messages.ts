import type { WorkerDeviceBoot } from './execution-strategy.js';
import type { ProcessDeviceBoot } from './device-messages.js';
import type { ChannelConfig } from '../scheduler/ring-layout.js';
import type { LogLevel } from '../logger.js';
import type { SandboxPlan, SandboxReport } from './sandbox/apply-sandbox.js';
import { type BatchPolicy, batchPolicyProblem, normaliseBatchPolicy } from '../router/batch-policy.js';

/**
 * Every message that crosses the control port between the controller and a worker. None of them is
 * on the call path: they carry start-up, logs and shutdown only.
 */
export interface WorkerBootData {
  readonly module: string;
  readonly replica: number;
  readonly channel: SharedArrayBuffer;
  readonly channelConfig: ChannelConfig;
  readonly arena: SharedArrayBuffer | null;
  readonly logLevel: LogLevel;
  readonly device?: WorkerDeviceBoot;
  readonly config?: string;
}

export interface AdvertisedCapability {
  readonly key: string;
  readonly proto: string;
  readonly input: string;
  readonly output: string;
  /** Present for a batched capability. */
  readonly batch?: BatchPolicy;
}

/** What a worker advertises for each capability it loaded. */
export function advertise(c: { key: string; source: { proto: string; input: string; output: string }; batch: BatchPolicy | undefined }): AdvertisedCapability {
  const base = { key: c.key, proto: c.source.proto, input: c.source.input, output: c.source.output };
  return c.batch === undefined ? base : { ...base, batch: c.batch };
}

/**
 * What a process worker's child reads from argv[2] (JSON). Its channel is the mapping of the fd
 * at CHANNEL_FD; its control messages are JSON lines written to CONTROL_FD.
 */
export interface ProcessBootData {
  readonly module: string;
  readonly replica: number;
  readonly label: string;
  readonly channelBytes: number;
  readonly channelConfig: ChannelConfig;
  readonly logLevel: LogLevel;
  readonly scratchDir: string;
  readonly sandbox: SandboxPlan;
  readonly device?: ProcessDeviceBoot;
  readonly config?: string;
}

/** The child's end of the control pipe: one JSON WorkerToController message per line. */
export const CONTROL_FD = 3;
/** The child's fd for its channel memory: stdio index 4, after stdin/stdout/stderr and the control pipe. */
export const CHANNEL_FD = 4;

export type WorkerToController =
  | { readonly type: 'ready'; readonly capabilities: readonly AdvertisedCapability[]; readonly sandbox?: SandboxReport }
  | { readonly type: 'failed'; readonly error: { code: string; message: string; details?: unknown } }
  | { readonly type: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly message: string; readonly fields?: Record<string, unknown> }
  | { readonly type: 'stopped' };

const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);
const MAX_TEXT = 64 * 1024;
const isText = (v: unknown, max = MAX_TEXT): v is string => typeof v === 'string' && v.length <= max;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a control message from a process worker, whose code is untrusted: anything malformed
 * is dropped (undefined) rather than believed. Thread workers are trusted and skip this.
 */
export function parseChildMessage(value: unknown): WorkerToController | undefined {
  if (!isRecord(value)) return undefined;
  switch (value.type) {
    case 'ready': {
      const caps = value.capabilities;
      if (!Array.isArray(caps) || caps.length > 4096) return undefined;
      const capabilities: AdvertisedCapability[] = [];
      for (const c of caps as unknown[]) {
        if (!isRecord(c) || !isText(c.key, 256) || !isText(c.proto, 1 << 20) || !isText(c.input, 256) || !isText(c.output, 256)) return undefined;
        if (c.batch !== undefined && batchPolicyProblem(c.batch, 'batch') !== undefined) return undefined;
        const base = { key: c.key, proto: c.proto, input: c.input, output: c.output };
        capabilities.push(c.batch === undefined ? base : { ...base, batch: normaliseBatchPolicy(c.batch as BatchPolicy) });
      }
      return isRecord(value.sandbox) ? { type: 'ready', capabilities, sandbox: value.sandbox as unknown as SandboxReport } : { type: 'ready', capabilities };
    }
    case 'failed': {
      const e = value.error;
      if (!isRecord(e) || !isText(e.code, 64) || !isText(e.message)) return undefined;
      return { type: 'failed', error: { code: e.code, message: e.message } };
    }
    case 'log': {
      if (!LOG_LEVELS.has(value.level as string) || !isText(value.message)) return undefined;
      const level = value.level as 'debug' | 'info' | 'warn' | 'error';
      return isRecord(value.fields) ? { type: 'log', level, message: value.message, fields: value.fields } : { type: 'log', level, message: value.message };
    }
    case 'stopped':
      return { type: 'stopped' };
    default:
      return undefined;
  }
}
