/**
 * Every failure a caller can see is a CaphostError with a stable `code`.
 * Codes are part of the public contract: add new ones, never rename.
 */
export const ErrorCode = {
  CAPABILITY_NOT_FOUND: 'CAPABILITY_NOT_FOUND',
  CAPABILITY_UNAVAILABLE: 'CAPABILITY_UNAVAILABLE',
  SCHEMA_MISMATCH: 'SCHEMA_MISMATCH',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  CANCELLED: 'CANCELLED',
  QUEUE_FULL: 'QUEUE_FULL',
  WORKER_CRASHED: 'WORKER_CRASHED',
  WORKER_START_FAILED: 'WORKER_START_FAILED',
  HANDLER_ERROR: 'HANDLER_ERROR',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  CONTROLLER_CLOSED: 'CONTROLLER_CLOSED',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  INVALID_WORKER: 'INVALID_WORKER',
  HANDLE_DENIED: 'HANDLE_DENIED',
  HANDLE_INVALID: 'HANDLE_INVALID',
  DEVICE_UNAVAILABLE: 'DEVICE_UNAVAILABLE',
  DEVICE_OUT_OF_MEMORY: 'DEVICE_OUT_OF_MEMORY',
  DEVICE_ERROR: 'DEVICE_ERROR',
  SANDBOX_UNAVAILABLE: 'SANDBOX_UNAVAILABLE',
  NATIVE_ERROR: 'NATIVE_ERROR',
  /** The NATS mesh cannot be joined: no server answers, or TLS was refused one way or the other. */
  MESH_UNAVAILABLE: 'MESH_UNAVAILABLE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const knownCodes = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && knownCodes.has(value);
}

export interface CaphostErrorOptions {
  cause?: unknown;
  /** Structured context for logs and programmatic handling (capability, field, worker id...). */
  details?: Record<string, unknown>;
}

export class CaphostError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: CaphostErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CaphostError';
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isCaphostError(value: unknown, code?: ErrorCode): value is CaphostError {
  return value instanceof CaphostError && (code === undefined || value.code === code);
}
