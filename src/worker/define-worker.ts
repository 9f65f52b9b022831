import type { Logger } from '../logger.js';
import { batchPolicyProblem } from '../router/batch-policy.js';

export type { BatchPolicy } from '../router/batch-policy.js';
import type { WorkerDevice } from './worker-device.js';
import type { DeviceTensor } from '../device/device-tensor.js';

/** What a handler sees besides its input. */
export interface WorkerContext {
  /** Aborted when the call's deadline passes or the caller cancels it. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Absolute deadline in epoch milliseconds, or undefined when the call has none. */
  readonly deadline: number | undefined;
  /** The capability being served, `name@major.minor`. */
  readonly capability: string;
  /** The controller's device, as this worker: granted tensors, its own buffers, command lists. */
  readonly device: WorkerDevice;
  /** The tensors of the entry's `weights` file, granted read-only. */
  readonly weights: ReadonlyMap<string, DeviceTensor>;
}

/** What setup and teardown see. */
export interface SetupContext {
  readonly log: Logger;
  /** Index of this replica among the replicas of its worker entry. */
  readonly replica: number;
  /** The entry's `config` (plain JSON data), or undefined. */
  readonly config: unknown;
  readonly device: WorkerDevice;
  readonly weights: ReadonlyMap<string, DeviceTensor>;
}

export interface CapabilitySchemaSpec {
  /** .proto source text, or a path to a .proto file relative to the worker module. */
  readonly proto: string;
  /** Fully qualified or unique name of the input message. */
  readonly input: string;
  /** Fully qualified or unique name of the output message. */
  readonly output: string;
}

/**
 * What a batch handler sees: the context of the whole batch. `signal` aborts once every call of
 * the batch has been cancelled or has passed its deadline (there is nothing left to compute for);
 * `deadline` is the latest deadline among its calls (undefined when one has none).
 */
export interface BatchContext extends WorkerContext {
  /** Calls in this batch: the length of the inputs array. */
  readonly size: number;
  /** Whether the call at `index` has been cancelled or timed out since the batch started (its caller already has the error). */
  cancelled(index: number): boolean;
}

// `any` keeps user handlers typed by their own annotations without forcing generated types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface SingleCapabilityDefinition<I = any, O = any> {
  readonly schema: CapabilitySchemaSpec;
  readonly batch?: undefined;
  readonly handler: (input: I, ctx: WorkerContext) => O | Promise<O>;
}

/**
 * A batched capability: the scheduler gathers queued calls (Triton's dynamic batching, see
 * BatchPolicy) and the handler receives their inputs as one array. It returns one output per
 * input, in order; an Error in place of an output fails that call alone.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface BatchedCapabilityDefinition<I = any, O = any> {
  readonly schema: CapabilitySchemaSpec;
  readonly batch: { readonly maxSize: number; readonly maxQueueDelayUs: number; readonly preferredSizes?: readonly number[] };
  readonly handler: (inputs: I[], ctx: BatchContext) => ReadonlyArray<O | Error> | Promise<ReadonlyArray<O | Error>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CapabilityDefinition<I = any, O = any> = SingleCapabilityDefinition<I, O> | BatchedCapabilityDefinition<I, O>;

export interface WorkerDefinition {
  /** Keyed by `name@major.minor`, e.g. `echo.bytes@1.0`. */
  readonly capabilities: Readonly<Record<string, CapabilityDefinition>>;
  readonly setup?: (ctx: SetupContext) => void | Promise<void>;
  readonly teardown?: (ctx: SetupContext) => void | Promise<void>;
}

export const WORKER_DEFINITION = Symbol.for('caphost.workerDefinition');

export type DefinedWorker = WorkerDefinition & { readonly [WORKER_DEFINITION]: true };

/**
 * Declares a worker module: `export default defineWorker({ capabilities, setup, teardown })`.
 * Shapes are checked here, at import, so a mistake surfaces when the worker starts.
 */
export function defineWorker(definition: WorkerDefinition): DefinedWorker {
  if (definition === null || typeof definition !== 'object') {
    throw new TypeError('defineWorker(definition): definition must be an object with a capabilities field');
  }
  const { capabilities, setup, teardown } = definition;
  if (capabilities === null || typeof capabilities !== 'object' || Object.keys(capabilities).length === 0) {
    throw new TypeError('defineWorker(definition): definition.capabilities must map at least one "name@major.minor" to { schema, handler }');
  }
  for (const [key, cap] of Object.entries(capabilities)) {
    if (cap === null || typeof cap !== 'object') throw new TypeError(`defineWorker: capabilities["${key}"] must be an object { schema, handler }`);
    if (typeof cap.handler !== 'function') throw new TypeError(`defineWorker: capabilities["${key}"].handler must be a function`);
    const schema = cap.schema;
    if (schema === null || typeof schema !== 'object') throw new TypeError(`defineWorker: capabilities["${key}"].schema must be { proto, input, output }`);
    for (const field of ['proto', 'input', 'output'] as const) {
      if (typeof schema[field] !== 'string' || schema[field].length === 0) {
        throw new TypeError(`defineWorker: capabilities["${key}"].schema.${field} must be a non-empty string`);
      }
    }
    if (cap.batch !== undefined) {
      const problem = batchPolicyProblem(cap.batch, `capabilities["${key}"].batch`);
      if (problem !== undefined) throw new TypeError(`defineWorker: ${problem}`);
    }
  }
  if (setup !== undefined && typeof setup !== 'function') throw new TypeError('defineWorker: definition.setup must be a function');
  if (teardown !== undefined && typeof teardown !== 'function') throw new TypeError('defineWorker: definition.teardown must be a function');
  return Object.freeze({ ...definition, [WORKER_DEFINITION]: true as const });
}

export function isDefinedWorker(value: unknown): value is DefinedWorker {
  return value !== null && typeof value === 'object' && (value as Record<symbol, unknown>)[WORKER_DEFINITION] === true;
}
