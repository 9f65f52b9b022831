export { defineWorker } from './define-worker.js';
export type { CapabilityDefinition, CapabilitySchemaSpec, DefinedWorker, SetupContext, WorkerContext, WorkerDefinition } from './define-worker.js';
export type { BatchContext, BatchedCapabilityDefinition, BatchPolicy, SingleCapabilityDefinition } from './define-worker.js';
export { CaphostError, ErrorCode } from '../errors.js';
export type { Logger } from '../logger.js';
