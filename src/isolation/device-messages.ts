/**
 * The device requests a process worker makes of its controller (one JSON line each on the
 * control pipe) and the replies it gets back on its device socket (DEVICE_FD), which can carry
 * a buffer's descriptor. The worker blocks for each reply: it is its own thread, and the
 * controller's event loop never waits on it. The worker never holds a session token: every
 * request runs in the controller as the worker's session, so the handle table decides.
 */
import type { DType } from '../device/dtype.js';
import type { WorkerDeviceBoot } from './execution-strategy.js';

/** The child's end of its device socket: stdio index 5. */
export const DEVICE_FD = 5;

export type DeviceRequest =
  | { readonly type: 'device'; readonly op: 'alloc'; readonly dtype: DType; readonly shape: number[] }
  | { readonly type: 'device'; readonly op: 'free'; readonly handle: string }
  | { readonly type: 'device'; readonly op: 'view'; readonly handle: string; readonly rights: 1 | 3 }
  | { readonly type: 'device'; readonly op: 'check'; readonly handle: string; readonly rights: 1 | 3 }
  | { readonly type: 'device'; readonly op: 'run'; readonly handles: string[]; readonly words: number[] }
  | { readonly type: 'device'; readonly op: 'write'; readonly handle: string; readonly byteOffset: number; readonly data: string }
  | { readonly type: 'device'; readonly op: 'read'; readonly handle: string; readonly byteOffset: number; readonly length: number };

export type DeviceReply =
  | { readonly ok: true; readonly handle?: string; readonly bytes?: number; readonly data?: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Runs one request as the worker's session; fd: a descriptor to pass with the reply (closed after). */
export type DeviceRequestHandler = (request: DeviceRequest) => Promise<{ reply: DeviceReply; fd?: number }>;

/** What a process worker is told of its device at boot (no session: the controller keeps it). */
export interface ProcessDeviceBoot {
  readonly backend: string;
  readonly hostVisible: boolean;
  readonly name: string;
  readonly weights: WorkerDeviceBoot['weights'];
}

/** Base64 chunk a read or write request carries at most (the reply must fit one socket message). */
export const DEVICE_CHUNK_BYTES = 512 * 1024;

const HANDLE = /^[0-9a-f]{32}$/;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Checks a request from an untrusted child; undefined when malformed. */
export function parseDeviceRequest(value: Record<string, unknown>): DeviceRequest | undefined {
  const handleOk = typeof value.handle === 'string' && HANDLE.test(value.handle);
  switch (value.op) {
    case 'alloc':
      return typeof value.dtype === 'string' && Array.isArray(value.shape) && value.shape.length <= 6 && value.shape.every(isCount)
        ? { type: 'device', op: 'alloc', dtype: value.dtype as DType, shape: value.shape as number[] }
        : undefined;
    case 'free':
      return handleOk ? { type: 'device', op: 'free', handle: value.handle as string } : undefined;
    case 'view':
    case 'check':
      return handleOk && (value.rights === 1 || value.rights === 3) ? { type: 'device', op: value.op, handle: value.handle as string, rights: value.rights } : undefined;
    case 'run':
      return Array.isArray(value.handles) && value.handles.every((h) => typeof h === 'string' && HANDLE.test(h)) && Array.isArray(value.words) && value.words.every((w) => typeof w === 'number')
        ? { type: 'device', op: 'run', handles: value.handles as string[], words: value.words as number[] }
        : undefined;
    case 'write':
      return handleOk && isCount(value.byteOffset) && typeof value.data === 'string' && value.data.length <= (DEVICE_CHUNK_BYTES * 4) / 3 + 4
        ? { type: 'device', op: 'write', handle: value.handle as string, byteOffset: value.byteOffset, data: value.data }
        : undefined;
    case 'read':
      return handleOk && isCount(value.byteOffset) && isCount(value.length) && value.length <= DEVICE_CHUNK_BYTES
        ? { type: 'device', op: 'read', handle: value.handle as string, byteOffset: value.byteOffset, length: value.length }
        : undefined;
    default:
      return undefined;
  }
}

export function isDeviceRequestShape(value: unknown): value is Record<string, unknown> {
  return isRecord(value) && value.type === 'device';
}
