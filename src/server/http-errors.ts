import { CaphostError, ErrorCode, isCaphostError } from '../errors.js';

const STATUS: Record<ErrorCode, number> = {
  CAPABILITY_NOT_FOUND: 404,
  CAPABILITY_UNAVAILABLE: 503,
  SCHEMA_MISMATCH: 400,
  DEADLINE_EXCEEDED: 504,
  CANCELLED: 499,
  QUEUE_FULL: 429,
  WORKER_CRASHED: 503,
  WORKER_START_FAILED: 503,
  HANDLER_ERROR: 500,
  PAYLOAD_TOO_LARGE: 413,
  CONTROLLER_CLOSED: 503,
  INVALID_ARGUMENT: 400,
  INVALID_WORKER: 500,
  HANDLE_DENIED: 403,
  HANDLE_INVALID: 400,
  DEVICE_UNAVAILABLE: 503,
  DEVICE_OUT_OF_MEMORY: 507,
  DEVICE_ERROR: 500,
  SANDBOX_UNAVAILABLE: 503,
  NATIVE_ERROR: 500,
  MESH_UNAVAILABLE: 503,
};

/** The HTTP status for an error code; codes added later default to 500. */
export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** Any thrown value as a CaphostError; one without a code failed in the server itself (500). */
export function asCaphostError(err: unknown): CaphostError {
  if (isCaphostError(err)) return err;
  return new CaphostError(ErrorCode.HANDLER_ERROR, `the server failed on this request: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * The protocol's error object, `{ "error": "<message>" }`, with our stable `code` (and details)
 * beside it, so KServe clients show the message and caphost-aware ones branch on the code.
 */
export function errorBody(error: CaphostError): string {
  return JSON.stringify(error.details === undefined ? { error: error.message, code: error.code } : { error: error.message, code: error.code, details: error.details });
}
