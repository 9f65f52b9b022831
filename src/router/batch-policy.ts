/**
 * A capability's dynamic batching, as its worker declares it. The scheduler applies it with the
 * semantics of Triton's dynamic batcher (scheduler/decide-batch.ts): it holds calls of a batched
 * capability and hands them to one handler invocation as a batch.
 */
export interface BatchPolicy {
  /** Most calls in one batch. */
  readonly maxSize: number;
  /** Longest a call may wait in the queue for others to join its batch, in µs. 0: send what is queued as soon as a replica is free. */
  readonly maxQueueDelayUs: number;
  /** Batch sizes the handler runs best at; a batch of the largest one that the queue can fill goes at once, without waiting. */
  readonly preferredSizes: readonly number[];
}

/** Upper bound on maxSize: a batch travels as consecutive ring slots, and its count as 16 bits of a slot's flags. */
export const MAX_BATCH_SIZE = 4096;

/**
 * Returns why `value` is not a batch policy (naming the field from `at`), or undefined when it is.
 * preferredSizes may be left out; it defaults to none.
 */
export function batchPolicyProblem(value: unknown, at: string): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${at} must be an object { maxSize, maxQueueDelayUs, preferredSizes }`;
  const v = value as Record<string, unknown>;
  const isInt = (n: unknown, min: number, max: number): boolean => typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
  if (!isInt(v['maxSize'], 1, MAX_BATCH_SIZE)) return `${at}.maxSize must be an integer from 1 to ${MAX_BATCH_SIZE}, got ${String(v['maxSize'])}`;
  if (!isInt(v['maxQueueDelayUs'], 0, 60_000_000)) return `${at}.maxQueueDelayUs must be an integer number of microseconds from 0 to 60 000 000, got ${String(v['maxQueueDelayUs'])}`;
  const preferred = v['preferredSizes'];
  if (preferred === undefined) return undefined;
  if (!Array.isArray(preferred) || preferred.length > 64) return `${at}.preferredSizes must be an array of at most 64 batch sizes`;
  for (const size of preferred as unknown[]) {
    if (!isInt(size, 1, v['maxSize'] as number)) return `${at}.preferredSizes holds ${String(size)}; each must be an integer from 1 to maxSize (${String(v['maxSize'])})`;
  }
  return undefined;
}

/** A checked policy in canonical form: preferred sizes sorted, without duplicates. */
export function normaliseBatchPolicy(value: { maxSize: number; maxQueueDelayUs: number; preferredSizes?: readonly number[] | undefined }): BatchPolicy {
  const preferredSizes = [...new Set(value.preferredSizes ?? [])].sort((a, b) => a - b);
  return Object.freeze({ maxSize: value.maxSize, maxQueueDelayUs: value.maxQueueDelayUs, preferredSizes: Object.freeze(preferredSizes) });
}
