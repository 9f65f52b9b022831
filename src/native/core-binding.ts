/**
 * The one typed face of the native core addon (native/core, built by node-gyp into
 * build/Release/caphost_core.node): shared memory across processes, cross-process
 * futex wait/wake, and the sandbox steps a process worker applies to itself.
 *
 * Every failure surfaces as a CaphostError whose code is INVALID_ARGUMENT,
 * NATIVE_ERROR or SANDBOX_UNAVAILABLE; syscall failures carry `errno`/`syscall` in
 * `details`.
 */
import { loadAddon } from './load-addon.js';
import { CaphostError, isErrorCode } from '../errors.js';

/** What a futex wait ended with; 'ok' may be spurious, so re-check the word. */
export type FutexWaitResult = 'ok' | 'not-equal' | 'timed-out';

/** Memory a futex word lives in: the mapping's ArrayBuffer or any view over it. */
export type FutexTarget = ArrayBuffer | ArrayBufferView;

export interface SharedMemory {
  /** Close-on-exec in this process; pass it in spawn's stdio array to hand it to a child. */
  readonly fd: number;
  /** The MAP_SHARED mapping; unmapped when this ArrayBuffer is garbage-collected. */
  readonly buffer: ArrayBuffer;
}

export interface SeccompSupport {
  /** seccomp(SECCOMP_SET_MODE_FILTER) is available. */
  readonly filter: boolean;
  /** SECCOMP_FILTER_FLAG_TSYNC is available (needed: Node is multi-threaded). */
  readonly tsync: boolean;
  /** Current mode of this thread: 0 none, 1 strict, 2 a filter is installed. */
  readonly mode: number;
}

export interface LandlockRestrictOptions {
  /** Granted read-file, read-dir and execute beneath them. */
  readonly readOnly: readonly string[];
  /** Granted every handled right beneath them. */
  readonly readWrite: readonly string[];
  /** Rights to handle (deny unless granted); defaults to all the kernel's ABI knows. */
  readonly handledAccessFs?: number;
  /** Deny TCP bind and connect; needs ABI >= 4, else SANDBOX_UNAVAILABLE. */
  readonly denyTcp: boolean;
  /**
   * Restrict every thread of the process, not only the caller (default true). Landlock
   * has no TSYNC, and libuv's pool threads that serve fs.promises already exist.
   */
  readonly allThreads?: boolean;
}

export interface LandlockRestrictResult {
  readonly abi: number;
  /**
   * Landlock scopes applied (ABI >= 6): bit 0 abstract unix sockets, bit 1 signals; 0 on an
   * older kernel, where the worker can still signal same-user processes outside its domain.
   */
  readonly scoped: number;
  /** Paths that did not exist and so got no rule. */
  readonly skipped: string[];
  /** Threads restricted, the caller included. */
  readonly threads: number;
  /**
   * Threads that block signals and so could not be reached (in Node 20: the SIGUSR1
   * inspector watchdog, which runs no user code). The sandbox profile decides.
   */
  readonly unrestrictedThreads: { tid: number; name: string }[];
}

export interface CpuFeatures {
  readonly avx2: boolean;
  readonly fma: boolean;
  readonly avx512f: boolean;
  readonly neon: boolean;
}

export interface CoreBinding {
  /** Version of this native interface; bumped on incompatible changes. */
  readonly abiVersion: number;
  /** A memfd (Linux) or unlinked shm object (macOS) of byteLength bytes, size-sealed. */
  createSharedMemory(byteLength: number, name?: string): SharedMemory;
  /** Maps an inherited fd; refuses byteLength beyond the object's size. */
  /** readOnly maps PROT_READ (an fd opened read-only cannot be mapped writable). */
  mapSharedMemory(fd: number, byteLength: number, readOnly?: boolean): ArrayBuffer;
  /** A connected AF_UNIX SOCK_SEQPACKET pair (close-on-exec). */
  socketPair(): [number, number];
  /** One message (1 B to 1 MiB), optionally carrying a descriptor (SCM_RIGHTS); blocks. */
  sendMessage(fd: number, bytes: Uint8Array, passFd?: number): void;
  /** Blocks for one message; fd is -1 unless one came with it. */
  recvMessage(fd: number): { bytes: Buffer; fd: number };
  closeFd(fd: number): void;
  clearCloexec(fd: number): void;
  /**
   * Blocks this thread while the int32 at byteOffset (relative to the view's start)
   * equals expected. timeoutMs: undefined or Infinity waits forever.
   */
  futexWait(target: FutexTarget, byteOffset: number, expected: number, timeoutMs?: number): FutexWaitResult;
  /** Wakes up to count waiters in any process (default all); returns how many woke. */
  futexWake(target: FutexTarget, byteOffset: number, count?: number): number;
  /** sched_yield: another runnable thread on this CPU runs first; returns at once when there is none. */
  yieldCpu(): void;
  /**
   * futexWait on a dedicated thread. The pending promise keeps the event loop alive, so
   * wake it (or use a finite timeout) before shutting down.
   */
  futexWaitAsync(target: FutexTarget, byteOffset: number, expected: number, timeoutMs?: number): Promise<FutexWaitResult>;
  /** PR_SET_NO_NEW_PRIVS for the calling thread (seccomp TSYNC spreads it to all). */
  setNoNewPrivs(): void;
  /** Probes without installing anything; all false off Linux. */
  seccompSupport(): SeccompSupport;
  /**
   * Installs a classic BPF program (8-byte little-endian sock_filter entries) on every
   * thread (TSYNC), setting no_new_privs first. Irreversible for this process.
   */
  installSeccompFilter(program: Uint8Array): void;
  /** 0 when the kernel lacks Landlock or has it disabled. */
  landlockAbiVersion(): number;
  /** Irreversible for this process; a throw may leave it partly restricted: exit then. */
  landlockRestrict(options: LandlockRestrictOptions): LandlockRestrictResult;
  cpuFeatures(): CpuFeatures;
}

/** Landlock filesystem rights (LANDLOCK_ACCESS_FS_*), for handledAccessFs. */
export const LandlockAccessFs = {
  EXECUTE: 1 << 0,
  WRITE_FILE: 1 << 1,
  READ_FILE: 1 << 2,
  READ_DIR: 1 << 3,
  REMOVE_DIR: 1 << 4,
  REMOVE_FILE: 1 << 5,
  MAKE_CHAR: 1 << 6,
  MAKE_DIR: 1 << 7,
  MAKE_REG: 1 << 8,
  MAKE_SOCK: 1 << 9,
  MAKE_FIFO: 1 << 10,
  MAKE_BLOCK: 1 << 11,
  MAKE_SYM: 1 << 12,
  REFER: 1 << 13, // ABI 2
  TRUNCATE: 1 << 14, // ABI 3
  IOCTL_DEV: 1 << 15, // ABI 5
} as const;

/** Native errors carry a code string; give callers the project's typed error. */
function adopt(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const native = err as Error & { code?: unknown; errno?: number; syscall?: string; threadId?: number };
  if (!isErrorCode(native.code)) return err;
  const details: Record<string, unknown> = {};
  if (native.errno !== undefined) details.errno = native.errno;
  if (native.syscall !== undefined) details.syscall = native.syscall;
  if (native.threadId !== undefined) details.threadId = native.threadId;
  return new CaphostError(native.code, native.message, {
    cause: err,
    ...(Object.keys(details).length > 0 ? { details } : {}),
  });
}

function sync<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return fn(...args);
    } catch (err) {
      throw adopt(err);
    }
  };
}

function wrap(raw: CoreBinding): CoreBinding {
  return Object.freeze({
    abiVersion: raw.abiVersion,
    createSharedMemory: sync(raw.createSharedMemory),
    mapSharedMemory: sync(raw.mapSharedMemory),
    socketPair: sync(raw.socketPair),
    sendMessage: sync(raw.sendMessage),
    recvMessage: sync(raw.recvMessage),
    closeFd: sync(raw.closeFd),
    clearCloexec: sync(raw.clearCloexec),
    futexWait: sync(raw.futexWait),
    futexWake: sync(raw.futexWake),
    yieldCpu: raw.yieldCpu,
    futexWaitAsync: (target: FutexTarget, byteOffset: number, expected: number, timeoutMs?: number) => {
      try {
        return raw.futexWaitAsync(target, byteOffset, expected, timeoutMs).catch((err: unknown) => {
          throw adopt(err);
        });
      } catch (err) {
        return Promise.reject(adopt(err));
      }
    },
    setNoNewPrivs: sync(raw.setNoNewPrivs),
    seccompSupport: sync(raw.seccompSupport),
    installSeccompFilter: sync(raw.installSeccompFilter),
    landlockAbiVersion: sync(raw.landlockAbiVersion),
    landlockRestrict: sync(raw.landlockRestrict),
    cpuFeatures: sync(raw.cpuFeatures),
  });
}

let cached: CoreBinding | undefined;

/** Loads the addon once; throws CaphostError(NATIVE_ERROR) when it is missing or broken. */
export function loadCoreBinding(): CoreBinding {
  if (cached !== undefined) return cached;
  cached = wrap(loadAddon<CoreBinding>('caphost_core'));
  return cached;
}
