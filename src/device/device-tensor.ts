/**
 * A reference to a tensor in a controller-owned device buffer: the buffer's handle (128 random
 * bits, so it cannot be guessed), where the tensor starts in it, its dtype and shape, and the
 * rights the holder was given. The handle alone grants nothing: the controller's handle table
 * decides, per worker and per use, what a holder may do with it.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { DTYPE_BYTES, elementCount, isDType, type DType } from './dtype.js';

export type Rights = 'r' | 'rw';

export const MAX_RANK = 6;

const HANDLE_PATTERN = /^[0-9a-f]{32}$/;

export class DeviceTensor {
  readonly handle: string;
  /** Where the tensor starts in its buffer, in bytes (a multiple of the dtype's size). */
  readonly byteOffset: number;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly rights: Rights;

  constructor(handle: string, byteOffset: number, dtype: DType, shape: readonly number[], rights: Rights) {
    if (!HANDLE_PATTERN.test(handle)) throw new CaphostError(ErrorCode.HANDLE_INVALID, 'not a device buffer handle');
    if (!isDType(dtype)) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `unknown dtype ${String(dtype)}`);
    checkShape(shape, 'shape');
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset % DTYPE_BYTES[dtype] !== 0) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `byteOffset ${byteOffset} is not a non-negative multiple of ${dtype}'s ${DTYPE_BYTES[dtype]} bytes`);
    }
    this.handle = handle;
    this.byteOffset = byteOffset;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.rights = rights;
    Object.freeze(this);
  }

  get size(): number {
    return elementCount(this.shape);
  }

  get byteLength(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  /** The same elements under another shape with as many elements (no copy). */
  reshape(shape: readonly number[]): DeviceTensor {
    checkShape(shape, 'reshape');
    if (elementCount(shape) !== this.size) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `reshape: [${shape.join(', ')}] has ${elementCount(shape)} elements, the tensor [${this.shape.join(', ')}] has ${this.size}`);
    }
    return new DeviceTensor(this.handle, this.byteOffset, this.dtype, shape, this.rights);
  }

  /** The same tensor with read rights only: what to pass to a call whose worker must not write it. */
  readOnly(): DeviceTensor {
    return this.rights === 'r' ? this : new DeviceTensor(this.handle, this.byteOffset, this.dtype, this.shape, 'r');
  }

  /** Rows [start, end) of the first axis (no copy). */
  slice(start: number, end: number = this.shape[0]!): DeviceTensor {
    const rows = this.shape[0]!;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > rows || start >= end) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `slice: [${start}, ${end}) is not a non-empty range of the first axis (${rows})`);
    }
    const rowBytes = this.byteLength / rows;
    return new DeviceTensor(this.handle, this.byteOffset + start * rowBytes, this.dtype, [end - start, ...this.shape.slice(1)], this.rights);
  }

  /** What crosses a ring or a wire: everything but the rights, which the receiver's grant decides. */
  toJSON(): { handle: string; byteOffset: number; dtype: DType; shape: number[] } {
    return { handle: this.handle, byteOffset: this.byteOffset, dtype: this.dtype, shape: [...this.shape] };
  }
}

export function isDeviceTensor(value: unknown): value is DeviceTensor {
  return value instanceof DeviceTensor;
}

export function checkShape(shape: readonly number[], what: string): void {
  if (!Array.isArray(shape) || shape.length < 1 || shape.length > MAX_RANK) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${what} must be an array of 1 to ${MAX_RANK} dimensions`);
  }
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${what} [${shape.join(', ')}]: every dimension must be an integer >= 1`);
    }
  }
}
