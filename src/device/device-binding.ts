/**
 * The typed face of the device addon (native/device, built by node-gyp into
 * build/Release/caphost_device.node): backends, sessions, buffer handles and their grants,
 * host views, copies and command lists. Every function throws or rejects with an Error whose
 * `code` is one of src/errors.ts (HANDLE_DENIED, HANDLE_INVALID, INVALID_ARGUMENT,
 * DEVICE_UNAVAILABLE, DEVICE_OUT_OF_MEMORY, DEVICE_ERROR, NATIVE_ERROR); toCaphostError turns
 * it into a CaphostError.
 */
import { loadAddon } from '../native/load-addon.js';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';

export interface NativeDeviceInfo {
  readonly name: string;
  readonly totalMemory: number;
  readonly hostVisible: boolean;
  readonly computeMajor: number;
  readonly computeMinor: number;
  readonly threads: number;
}

export interface NativeBackendInfo {
  readonly name: string;
  readonly devices: NativeDeviceInfo[];
  readonly abi: number;
}

/** Rights bits: 1 read, 2 write. */
export type RightsBits = 1 | 2 | 3;

export interface DeviceBinding {
  openBackend(nameOrPath: string): NativeBackendInfo;
  setCpuThreads(threads: number): number;
  newSession(): string;
  /** Main thread only: the session holding every right (the controller's). */
  controllerSession(): string;
  dropSession(session: string): void;
  alloc(session: string, backend: string, device: number, bytes: number): string;
  mapFile(session: string, path: string): string;
  free(session: string, handle: string): void;
  seal(session: string, handle: string): void;
  adopt(session: string, handle: string, from: string): void;
  grant(session: string, handle: string, to: string, rights: RightsBits): void;
  revoke(session: string, handle: string, from: string): void;
  view(session: string, handle: string, rights: RightsBits): ArrayBuffer;
  /** The buffer's size if session holds rights on it; throws HANDLE_DENIED / HANDLE_INVALID otherwise. */
  check(session: string, handle: string, rights: RightsBits): number;
  shareFd(session: string, handle: string, rights: RightsBits): { fd: number; bytes: number };
  write(session: string, handle: string, byteOffset: number, source: ArrayBufferView, sync?: boolean): Promise<void> | undefined;
  read(session: string, handle: string, byteOffset: number, target: ArrayBufferView, sync?: boolean): Promise<void> | undefined;
  run(session: string, handles: readonly string[], ops: Float64Array): Promise<void>;
  runSync(session: string, handles: readonly string[], ops: Float64Array): void;
  stats(): { handles: number; bytes: number };
  readonly opWords: number;
}

/** A native failure as a CaphostError (codes the addon does not know become NATIVE_ERROR). */
export function toCaphostError(err: unknown): unknown {
  if (err instanceof CaphostError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  return new CaphostError(isErrorCode(code) ? code : ErrorCode.NATIVE_ERROR, err.message, { cause: err });
}

let cached: DeviceBinding | undefined;

/** Loads the addon once (per thread); throws CaphostError(NATIVE_ERROR) when it is missing. */
export function loadDeviceBinding(): DeviceBinding {
  if (cached !== undefined) return cached;
  cached = loadAddon<DeviceBinding>('caphost_device');
  return cached;
}

export { packageRoot } from '../native/load-addon.js';
