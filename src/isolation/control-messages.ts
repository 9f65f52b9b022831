import type { ChannelConfig } from '../scheduler/ring-layout.js';
import type { LogLevel } from '../logger.js';

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
}

export interface AdvertisedCapability {
  readonly key: string;
  readonly proto: string;
  readonly input: string;
  readonly output: string;
}

export type WorkerToController =
  | { readonly type: 'ready'; readonly capabilities: readonly AdvertisedCapability[] }
  | { readonly type: 'failed'; readonly error: { code: string; message: string; details?: unknown } }
  | { readonly type: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly message: string; readonly fields?: Record<string, unknown> }
  | { readonly type: 'stopped' };
