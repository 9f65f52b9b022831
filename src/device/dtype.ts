/**
 * Element types of device tensors, their sizes, their codes in the native interface
 * (ch_dtype in native/include/caphost_backend.h) and the typed arrays that view them on the
 * host. f16 and bf16 have no JS number type: their host views are Uint16Array bit patterns.
 */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u8';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'u8'];

/** ch_dtype codes, in the header's order. */
export const DTYPE_CODE: Readonly<Record<DType, number>> = { f32: 0, f16: 1, bf16: 2, i32: 3, u8: 4 };

export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

export type HostArray = Float32Array | Uint16Array | Int32Array | Uint8Array;

export interface HostArrayOf {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i32: Int32Array;
  u8: Uint8Array;
}

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

/** A typed array of dtype's element type over buffer[byteOffset, byteOffset + length*size). */
export function hostView<D extends DType>(dtype: D, buffer: ArrayBufferLike, byteOffset: number, length: number): HostArrayOf[D] {
  switch (dtype) {
    case 'f32': return new Float32Array(buffer, byteOffset, length) as HostArrayOf[D];
    case 'i32': return new Int32Array(buffer, byteOffset, length) as HostArrayOf[D];
    case 'u8': return new Uint8Array(buffer, byteOffset, length) as HostArrayOf[D];
    default: return new Uint16Array(buffer, byteOffset, length) as HostArrayOf[D];
  }
}

/** The dtype a typed array holds without further word (Uint16Array is ambiguous: f16 or bf16). */
export function dtypeOfArray(data: ArrayBufferView): DType | undefined {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Uint8Array) return 'u8';
  return undefined;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
