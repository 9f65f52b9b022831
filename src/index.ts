export { Controller } from './controller/controller.js';
export type { CallOptions, CloseOptions, ControllerStats, WorkerStats } from './controller/controller.js';
export type { ControllerOptions, RestartPolicy, WorkerEntry } from './controller/controller-options.js';
export { CaphostError, ErrorCode, isCaphostError } from './errors.js';
export type { Logger, LogLevel } from './logger.js';
export type { CapabilityDescriptor } from './router/capability-registry.js';
export { SharedArena } from './scheduler/shared-arena.js';
export type { SandboxProfile, BuiltinProfileName } from './isolation/sandbox/sandbox-profile.js';
