import type { CaphostError } from '../errors.js';
import type { Logger, LogLevel } from '../logger.js';
import type { ChannelConfig } from '../scheduler/ring-layout.js';
import type { AdvertisedCapability } from './control-messages.js';

export interface WorkerLaunch {
  readonly module: URL;
  readonly replica: number;
  readonly label: string;
  readonly channel: SharedArrayBuffer;
  readonly channelConfig: ChannelConfig;
  readonly arena: SharedArrayBuffer | null;
  readonly logLevel: LogLevel;
  readonly log: Logger;
  readonly startTimeoutMs: number;
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
  start(launch: WorkerLaunch): Promise<WorkerInstance>;
}
