import type { DeviceRequestHandler } from './device-messages.js';
import type { CaphostError } from '../errors.js';
import type { Logger, LogLevel } from '../logger.js';
import type { ChannelConfig } from '../scheduler/ring-layout.js';
import type { AdvertisedCapability } from './control-messages.js';
import type { Wake } from '../scheduler/wake.js';

/** A worker's channel memory and how its two sides wake each other across the strategy's boundary. */
export interface ChannelMemory {
  readonly buffer: SharedArrayBuffer | ArrayBuffer;
  readonly wake: Wake;
  /** Releases what the memory holds outside the JS heap (a file descriptor); idempotent. */
  close(): void;
}

/** What a worker needs to reach the controller's device: its session and its weights. */
export interface WorkerDeviceBoot {
  readonly session: string;
  /** 'cpu', or the path of the GPU backend library the controller opened. */
  readonly backend: string;
  readonly weights: readonly (readonly [string, { handle: string; byteOffset: number; dtype: string; shape: number[] }])[];
}

export interface WorkerLaunch {
  readonly module: URL;
  readonly replica: number;
  readonly label: string;
  readonly channel: ChannelMemory;
  readonly channelConfig: ChannelConfig;
  /** The controller's shared arena, for strategies whose workers can map it (see sharesArena). */
  readonly arena: SharedArrayBuffer | null;
  readonly logLevel: LogLevel;
  readonly log: Logger;
  readonly startTimeoutMs: number;
  readonly device?: WorkerDeviceBoot;
  /** The entry's config as JSON text: ctx.config in setup. */
  readonly config?: string;
  /** Serves a process worker's device requests as its session (thread workers call the table directly). */
  readonly deviceRequests?: DeviceRequestHandler;
  /** The controller's device, described for a process worker. */
  readonly deviceInfo?: { readonly hostVisible: boolean; readonly name: string };
}

/** A started worker, whatever runs it. */
export interface WorkerInstance {
  readonly capabilities: readonly AdvertisedCapability[];
  /** Called once if the worker stops without being asked to (crash, exit, out of memory). */
  onExit(listener: (error: CaphostError) => void): void;
  /** Waits up to graceMs for the worker to leave after its channel was told to shut down, then forces it. */
  stop(graceMs: number): Promise<void>;
  /** Ends the worker at once. */
  terminate(): Promise<void>;
}

/** How a worker module runs: `thread` now; `process` builds on the same contract. */
export interface ExecutionStrategy {
  readonly name: string;
  /** Whether workers see the controller's shared arena, so arena views can cross by reference. */
  readonly sharesArena: boolean;
  /** Memory for one worker's channel. */
  allocateChannel(byteLength: number): ChannelMemory;
  start(launch: WorkerLaunch): Promise<WorkerInstance>;
}
