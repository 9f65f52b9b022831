/**
 * Tensors inside capability messages (proto/caphost/tensor.proto). A caller passes a
 * DeviceTensor (a handle, crossing by reference) or a HostTensor (a typed array with a shape,
 * crossing inline); the worker receives the same kinds back. Only the shape of the value is
 * checked here: rights are the device layer's business, at grant time.
 */
import { readFileSync } from 'node:fs';
import { CaphostError, ErrorCode } from '../errors.js';
import { DeviceTensor, checkShape } from '../device/device-tensor.js';
import { DTYPE_BYTES, dtypeOfArray, elementCount, hostView, isDType, type DType, type HostArray } from '../device/dtype.js';

export const TENSOR_TYPE = 'caphost.Tensor';

/** The proto text, read once from the package's proto/ folder. */
export const TENSOR_PROTO = readFileSync(new URL('../../../proto/caphost/tensor.proto', import.meta.url), 'utf8');

/** A tensor held in host memory, inline in the message. */
export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: HostArray;
}

export type TensorValue = DeviceTensor | HostTensor;

interface WireTensor {
  dtype: string;
  shape: number[];
  handle?: Uint8Array;
  byte_offset?: number;
  rights?: number;
  data?: Uint8Array;
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/** The wire form of a tensor value, or a SCHEMA_MISMATCH naming the field. */
export function toWireTensor(value: unknown, label: string, field: string): WireTensor {
  if (value instanceof DeviceTensor) {
    return { dtype: value.dtype, shape: [...value.shape], handle: hexToBytes(value.handle), byte_offset: value.byteOffset, rights: value.rights === 'rw' ? 3 : 1 };
  }
  const bad = (what: string): CaphostError =>
    new CaphostError(ErrorCode.SCHEMA_MISMATCH, `${label} field "${field}": ${what}`, { details: { field } });
  if (value === null || typeof value !== 'object') throw bad('must be a DeviceTensor or { data: TypedArray, shape }');
  const { data, shape, dtype } = value as { data?: unknown; shape?: unknown; dtype?: unknown };
  if (!ArrayBuffer.isView(data) || data instanceof DataView) throw bad('data must be a typed array');
  const type = dtype === undefined ? dtypeOfArray(data) : dtype;
  if (!isDType(type)) throw bad(`dtype must be one of f32, f16, bf16, i32, u8 (a Uint16Array needs dtype 'f16' or 'bf16')`);
  const dims = shape === undefined ? [data.byteLength / DTYPE_BYTES[type]] : shape;
  try {
    checkShape(dims as number[], 'shape');
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (elementCount(dims as number[]) * DTYPE_BYTES[type] !== data.byteLength) {
    throw bad(`shape [${(dims as number[]).join(', ')}] of ${type} needs ${elementCount(dims as number[]) * DTYPE_BYTES[type]} bytes, data has ${data.byteLength}`);
  }
  return { dtype: type, shape: [...(dims as number[])], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** A decoded wire tensor as the value a handler or caller sees. */
export function fromWireTensor(wire: WireTensor, label: string, field: string): TensorValue {
  const bad = (what: string): CaphostError =>
    new CaphostError(ErrorCode.SCHEMA_MISMATCH, `${label} field "${field}": ${what}`, { details: { field } });
  if (!isDType(wire.dtype)) throw bad(`unknown dtype "${wire.dtype}"`);
  const shape = wire.shape.length === 0 ? [1] : wire.shape;
  if (wire.handle !== undefined && wire.handle.length > 0) {
    if (wire.handle.length !== 16) throw bad('a handle is 16 bytes');
    try {
      return new DeviceTensor(bytesToHex(wire.handle), Number(wire.byte_offset ?? 0), wire.dtype, shape, wire.rights === 3 ? 'rw' : 'r');
    } catch (err) {
      throw bad((err as Error).message);
    }
  }
  const data = wire.data ?? new Uint8Array(0);
  const count = elementCount(shape);
  if (count * DTYPE_BYTES[wire.dtype] !== data.byteLength) throw bad(`shape [${shape.join(', ')}] does not match ${data.byteLength} bytes of data`);
  // Decoded bytes are private copies; they may sit at any offset, so align them for the view.
  const aligned = data.byteOffset % DTYPE_BYTES[wire.dtype] === 0 ? data : data.slice();
  return { dtype: wire.dtype, shape, data: hostView(wire.dtype, aligned.buffer, aligned.byteOffset, count) };
}
