/**
 * KServe v2 tensors ↔ capability message fields, by name. Every conversion between the protocol's
 * tensors and protobuf messages lives here, so that `caphost.Tensor` fields (device tensors) can be
 * added as one more field kind.
 *
 * A tensor maps to a top-level field of the same name: a repeated numeric field is a tensor of any
 * shape (flattened row-major), a singular one a tensor of shape [1]; `string` and `bytes` fields are
 * BYTES. A repeated integer field named `<tensor>_shape` beside it, if the message has one, carries
 * the shape (set from the request on the way in, read as the output's shape on the way out).
 */
import type protobuf from 'protobufjs';
import type { Device } from '../device/device.js';
import { DeviceTensor } from '../device/device-tensor.js';
import { DTYPE_BYTES, type DType, type HostArray, hostView } from '../device/dtype.js';
import { CaphostError, ErrorCode } from '../errors.js';

export type Datatype = 'BOOL' | 'UINT8' | 'UINT32' | 'UINT64' | 'INT32' | 'INT64' | 'FP16' | 'BF16' | 'FP32' | 'FP64' | 'BYTES';

/** A `caphost.Tensor` field takes any of these; its dtype travels with the value. */
const DTYPE_OF: Partial<Record<Datatype, DType>> = { FP32: 'f32', FP16: 'f16', BF16: 'bf16', INT32: 'i32', UINT8: 'u8' };
const DATATYPE_OF_DTYPE: Record<DType, Datatype> = { f32: 'FP32', f16: 'FP16', bf16: 'BF16', i32: 'INT32', u8: 'UINT8' };

/** One tensor a model takes or returns, with the field that carries it. */
export interface TensorSpec {
  readonly name: string;
  readonly datatype: Datatype;
  /** -1 for a dimension of any size (the protocol's convention). */
  readonly shape: readonly number[];
  readonly repeated: boolean;
  /** `string` fields take and give text; `bytes` fields take and give raw bytes. */
  readonly text: boolean;
  /** The companion `<name>_shape` field, when the message has one. */
  readonly shapeField: string | undefined;
  /** A `caphost.Tensor` field: any shape, dtype chosen per value (FP32, FP16, BF16, INT32, UINT8). */
  readonly device: boolean;
}

/** A tensor as the protocol's JSON has it; `data` is absent when it travels as binary. */
export interface WireTensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

const DATATYPE_OF_FIELD: Record<string, Datatype> = {
  float: 'FP32',
  double: 'FP64',
  int32: 'INT32',
  sint32: 'INT32',
  sfixed32: 'INT32',
  uint32: 'UINT32',
  fixed32: 'UINT32',
  int64: 'INT64',
  sint64: 'INT64',
  sfixed64: 'INT64',
  uint64: 'UINT64',
  fixed64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
  bytes: 'BYTES',
};

const ELEMENT_BYTES: Record<Exclude<Datatype, 'BYTES'>, number> = { BOOL: 1, UINT8: 1, UINT32: 4, UINT64: 8, INT32: 4, INT64: 8, FP16: 2, BF16: 2, FP32: 4, FP64: 8 };

const INTEGER_TYPES = new Set(['int32', 'sint32', 'sfixed32', 'uint32', 'fixed32', 'int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);

/** The tensors a message type carries, in field order; fields that are not tensors (messages, maps, enums) are left out. */
export function tensorSpecs(type: protobuf.Type): TensorSpec[] {
  const fields = type.fieldsArray;
  const shapeFields = new Set<string>();
  for (const field of fields) {
    if (!field.name.endsWith('_shape') || !field.repeated || !INTEGER_TYPES.has(field.type)) continue;
    const owner = type.fields[field.name.slice(0, -'_shape'.length)];
    if (owner !== undefined && DATATYPE_OF_FIELD[owner.type] !== undefined && !owner.map) shapeFields.add(field.name);
  }
  const specs: TensorSpec[] = [];
  for (const field of fields) {
    if (field.resolvedType?.fullName === '.caphost.Tensor') {
      // Its datatype is per value; metadata shows FP32, the usual one (model metadata lists the others).
      if (!field.repeated) specs.push({ name: field.name, datatype: 'FP32', shape: [-1], repeated: false, text: false, shapeField: undefined, device: true });
      continue;
    }
    const datatype = DATATYPE_OF_FIELD[field.type];
    if (datatype === undefined || field.map || shapeFields.has(field.name)) continue;
    const shapeField = shapeFields.has(`${field.name}_shape`) ? `${field.name}_shape` : undefined;
    specs.push({
      name: field.name,
      datatype,
      shape: field.repeated ? [-1] : [1],
      repeated: field.repeated,
      text: field.type === 'string',
      shapeField,
      device: false,
    });
  }
  return specs;
}

function mismatch(model: string, message: string, field?: string): CaphostError {
  return new CaphostError(ErrorCode.SCHEMA_MISMATCH, `model "${model}": ${message}`, { details: field === undefined ? { model } : { model, tensor: field } });
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

function checkShape(model: string, tensor: WireTensor): number {
  const shape = tensor.shape;
  if (!Array.isArray(shape)) throw mismatch(model, `input "${tensor.name}" needs "shape", an array of non-negative integers`, tensor.name);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) throw mismatch(model, `input "${tensor.name}" has shape ${JSON.stringify(shape)}; dimensions must be non-negative integers`, tensor.name);
  }
  return elementCount(shape);
}

/** Flattens nested JSON data row-major; flat arrays (the usual case) are returned as they are. */
function flatten(data: unknown[]): unknown[] {
  for (let i = 0; i < data.length; i++) {
    if (Array.isArray(data[i])) return (data as unknown[]).flat(Infinity);
  }
  return data;
}

const RANGES: Partial<Record<Datatype, [number, number]>> = {
  UINT8: [0, 255],
  INT32: [-(2 ** 31), 2 ** 31 - 1],
  UINT32: [0, 2 ** 32 - 1],
  INT64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

/** Checks JSON elements against the datatype; BYTES elements become what the field takes. */
function checkElements(model: string, spec: TensorSpec, data: unknown[]): unknown[] {
  const name = spec.name;
  switch (spec.datatype) {
    case 'FP32':
    case 'FP64':
      for (let i = 0; i < data.length; i++) {
        if (typeof data[i] !== 'number') throw mismatch(model, `input "${name}" (${spec.datatype}) has a non-number at element ${i}: ${JSON.stringify(data[i])}`, name);
      }
      return data;
    case 'BOOL':
      for (let i = 0; i < data.length; i++) {
        if (typeof data[i] !== 'boolean') throw mismatch(model, `input "${name}" (BOOL) has a non-boolean at element ${i}: ${JSON.stringify(data[i])}`, name);
      }
      return data;
    case 'BYTES':
      for (let i = 0; i < data.length; i++) {
        if (typeof data[i] !== 'string') throw mismatch(model, `input "${name}" (BYTES) has a non-string at element ${i}: ${JSON.stringify(data[i])}`, name);
      }
      return spec.text ? data : data.map((s) => Buffer.from(s as string, 'utf8'));
    default: {
      const [min, max] = RANGES[spec.datatype]!;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
          throw mismatch(model, `input "${name}" (${spec.datatype}) has ${JSON.stringify(v)} at element ${i}; expected an integer from ${min} to ${max}`, name);
        }
      }
      return data;
    }
  }
}

/** Binary tensor data (little-endian, row-major; BYTES as 4-byte length + bytes) to the elements a field takes. */
function decodeBinary(model: string, spec: TensorSpec, bytes: Buffer, count: number): unknown[] {
  const name = spec.name;
  if (spec.datatype === 'BYTES') {
    const out: unknown[] = [];
    let at = 0;
    while (at < bytes.length) {
      if (at + 4 > bytes.length) throw mismatch(model, `input "${name}": binary BYTES data ends inside an element's 4-byte length`, name);
      const length = bytes.readUInt32LE(at);
      at += 4;
      if (at + length > bytes.length) throw mismatch(model, `input "${name}": binary BYTES element ${out.length} says ${length} bytes but ${bytes.length - at} remain`, name);
      const element = bytes.subarray(at, at + length);
      out.push(spec.text ? element.toString('utf8') : Buffer.from(element));
      at += length;
    }
    if (out.length !== count) throw mismatch(model, `input "${name}" has shape with ${count} elements but its binary data holds ${out.length}`, name);
    return out;
  }
  const size = ELEMENT_BYTES[spec.datatype];
  if (bytes.length !== count * size) {
    throw mismatch(model, `input "${name}" (${spec.datatype}) has ${count} elements, which take ${count * size} bytes, but binary_data_size is ${bytes.length}`, name);
  }
  // Typed-array views need aligned offsets; a copy aligns them (and detaches from the request body).
  const aligned = bytes.byteOffset % size === 0 ? bytes : Buffer.from(bytes);
  const buffer = aligned.buffer;
  const offset = aligned.byteOffset;
  switch (spec.datatype) {
    case 'FP32':
      return Array.from(new Float32Array(buffer, offset, count));
    case 'FP64':
      return Array.from(new Float64Array(buffer, offset, count));
    case 'INT32':
      return Array.from(new Int32Array(buffer, offset, count));
    case 'UINT32':
      return Array.from(new Uint32Array(buffer, offset, count));
    case 'BOOL':
      return Array.from(aligned.subarray(0, count), (b) => b !== 0);
    case 'UINT8':
      return Array.from(aligned.subarray(0, count));
    case 'FP16':
    case 'BF16':
      throw mismatch(model, `input "${name}" is ${spec.datatype}, which only caphost.Tensor fields take`, name);
    case 'INT64':
    case 'UINT64': {
      const view = spec.datatype === 'INT64' ? new BigInt64Array(buffer, offset, count) : new BigUint64Array(buffer, offset, count);
      const out = new Array<number>(count);
      for (let i = 0; i < count; i++) {
        const v = view[i]!;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
          throw mismatch(model, `input "${name}" (${spec.datatype}) element ${i} is ${v}, beyond what the field carries exactly (±2^53)`, name);
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

/** A request tensor for a `caphost.Tensor` field: a host tensor (typed array + shape) of the datatype sent. */
function hostTensorFrom(model: string, spec: TensorSpec, tensor: WireTensor, count: number, raw: Buffer | undefined): { dtype: DType; shape: number[]; data: HostArray } {
  const name = spec.name;
  const dtype = DTYPE_OF[tensor.datatype as Datatype];
  if (dtype === undefined) throw mismatch(model, `input "${name}" is a device tensor: its datatype is one of FP32, FP16, BF16, INT32, UINT8, not ${JSON.stringify(tensor.datatype)}`, name);
  const size = DTYPE_BYTES[dtype];
  let data: HostArray;
  if (raw !== undefined) {
    if (raw.length !== count * size) throw mismatch(model, `input "${name}" (${tensor.datatype}) has ${count} elements, which take ${count * size} bytes, but binary_data_size is ${raw.length}`, name);
    const aligned = raw.byteOffset % size === 0 ? raw : Buffer.from(raw);
    data = hostView(dtype, aligned.buffer, aligned.byteOffset, count);
  } else {
    if (dtype === 'f16' || dtype === 'bf16') throw mismatch(model, `input "${name}": ${tensor.datatype} has no JSON form; send it as binary data (binary_data_size)`, name);
    if (!Array.isArray(tensor.data)) throw mismatch(model, `input "${name}" needs "data" (an array) or binary data with parameters.binary_data_size`, name);
    const elements = checkElements(model, { ...spec, datatype: tensor.datatype as Datatype }, flatten(tensor.data)) as number[];
    if (elements.length !== count) throw mismatch(model, `input "${name}" has shape ${JSON.stringify(tensor.shape)} (${count} elements) but ${elements.length} data elements`, name);
    data = dtype === 'f32' ? Float32Array.from(elements) : dtype === 'i32' ? Int32Array.from(elements) : Uint8Array.from(elements);
  }
  return { dtype, shape: tensor.shape.length === 0 ? [count] : [...tensor.shape], data };
}

/**
 * Builds a capability's input message from request tensors. `binary` holds each tensor's binary
 * data, by position in `inputs`, for those that sent `binary_data_size` instead of `data`.
 */
export function messageFromTensors(model: string, specs: ReadonlyMap<string, TensorSpec>, inputs: readonly WireTensor[], binary: readonly (Buffer | undefined)[] | null): Record<string, unknown> {
  const message: Record<string, unknown> = {};
  for (let i = 0; i < inputs.length; i++) {
    const tensor = inputs[i]!;
    if (tensor === null || typeof tensor !== 'object') throw mismatch(model, `inputs[${i}] must be an object { name, shape, datatype, data }`);
    const spec = specs.get(tensor.name);
    if (spec === undefined) {
      throw mismatch(model, `has no input named ${JSON.stringify(tensor.name)}; its inputs are ${[...specs.keys()].map((n) => `"${n}"`).join(', ') || 'none'}`, String(tensor.name));
    }
    if (message[spec.name] !== undefined) throw mismatch(model, `input "${spec.name}" is given twice`, spec.name);
    if (spec.device) {
      message[spec.name] = hostTensorFrom(model, spec, tensor, checkShape(model, tensor), binary?.[i]);
      continue;
    }
    if (tensor.datatype !== spec.datatype) throw mismatch(model, `input "${spec.name}" is ${spec.datatype}, not ${JSON.stringify(tensor.datatype)}`, spec.name);
    const count = checkShape(model, tensor);
    const raw = binary?.[i];
    let data: unknown[];
    if (raw !== undefined) data = decodeBinary(model, spec, raw, count);
    else {
      if (!Array.isArray(tensor.data)) throw mismatch(model, `input "${spec.name}" needs "data" (an array) or binary data with parameters.binary_data_size`, spec.name);
      data = checkElements(model, spec, flatten(tensor.data));
      if (data.length !== count) throw mismatch(model, `input "${spec.name}" has shape ${JSON.stringify(tensor.shape)} (${count} elements) but ${data.length} data elements`, spec.name);
    }
    if (spec.repeated) {
      message[spec.name] = data;
      if (spec.shapeField !== undefined) message[spec.shapeField] = tensor.shape;
    } else {
      if (count !== 1) throw mismatch(model, `input "${spec.name}" holds one element (shape [1]), not ${count}`, spec.name);
      message[spec.name] = data[0];
    }
  }
  return message;
}

/** The output's elements as a flat array and its shape (from the `<name>_shape` field when there is one). */
function outputElements(model: string, spec: TensorSpec, message: Record<string, unknown>): { data: unknown[]; shape: number[] } {
  const value = message[spec.name];
  let data: unknown[];
  if (spec.repeated) data = Array.isArray(value) ? value : [];
  else data = [value ?? defaultOf(spec)];
  if (spec.datatype === 'INT64' || spec.datatype === 'UINT64') data = data.map((v) => (typeof v === 'number' ? v : Number(String(v))));
  let shape = [data.length];
  if (spec.shapeField !== undefined) {
    const given = message[spec.shapeField];
    if (Array.isArray(given) && given.length > 0) {
      shape = given.map((d) => Number(d));
      if (elementCount(shape) !== data.length) {
        throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `model "${model}": output "${spec.name}" has ${data.length} elements but its ${spec.shapeField} says ${JSON.stringify(shape)}`, { details: { model, tensor: spec.name } });
      }
    }
  }
  return { data, shape };
}

function defaultOf(spec: TensorSpec): unknown {
  if (spec.datatype === 'BOOL') return false;
  if (spec.datatype === 'BYTES') return spec.text ? '' : Buffer.alloc(0);
  return 0;
}

/** A host tensor value of a `caphost.Tensor` output (device tensors were downloaded by settleDeviceTensors). */
function hostTensorOf(model: string, spec: TensorSpec, message: Record<string, unknown>): { dtype: DType; shape: number[]; data: HostArray } {
  const value = message[spec.name] as { dtype?: DType; shape?: number[]; data?: HostArray } | undefined;
  if (value === undefined || value === null) return { dtype: 'f32', shape: [0], data: new Float32Array(0) };
  if (value instanceof DeviceTensor || value.data === undefined || value.dtype === undefined) {
    throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `model "${model}": output "${spec.name}" is not a host tensor`, { details: { model, tensor: spec.name } });
  }
  return { dtype: value.dtype, shape: value.shape ?? [value.data.length], data: value.data };
}

/** f16 and bf16 bit patterns as numbers, for JSON. */
function halfToNumbers(dtype: DType, bits: HostArray): number[] {
  const out = new Array<number>(bits.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    if (dtype === 'bf16') {
      u[0] = h << 16;
      out[i] = f[0]!;
      continue;
    }
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    out[i] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac === 0 ? sign * Infinity : NaN) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
}

/** One output as JSON data (BYTES as UTF-8 text). */
export function jsonOutput(model: string, spec: TensorSpec, message: Record<string, unknown>): WireTensor {
  if (spec.device) {
    const t = hostTensorOf(model, spec, message);
    const data = t.dtype === 'f16' || t.dtype === 'bf16' ? halfToNumbers(t.dtype, t.data) : Array.from(t.data);
    return { name: spec.name, datatype: DATATYPE_OF_DTYPE[t.dtype], shape: t.shape, data };
  }
  const { data, shape } = outputElements(model, spec, message);
  const json = spec.datatype === 'BYTES' && !spec.text ? data.map((b) => Buffer.from(b as Uint8Array).toString('utf8')) : data;
  return { name: spec.name, datatype: spec.datatype, shape, data: json };
}

/** One output as binary data: its JSON description (with binary_data_size) and the bytes that follow the header. */
export function binaryOutput(model: string, spec: TensorSpec, message: Record<string, unknown>): { tensor: WireTensor; bytes: Buffer } {
  if (spec.device) {
    const t = hostTensorOf(model, spec, message);
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    return { tensor: { name: spec.name, datatype: DATATYPE_OF_DTYPE[t.dtype], shape: t.shape, parameters: { binary_data_size: bytes.length } }, bytes };
  }
  const { data, shape } = outputElements(model, spec, message);
  let bytes: Buffer;
  switch (spec.datatype) {
    case 'BYTES': {
      const parts = data.map((v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v as Uint8Array)));
      bytes = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
      let at = 0;
      for (const part of parts) {
        bytes.writeUInt32LE(part.length, at);
        part.copy(bytes, at + 4);
        at += 4 + part.length;
      }
      break;
    }
    case 'BOOL':
    case 'UINT8':
      bytes = Buffer.from(data.map((b) => (typeof b === 'boolean' ? (b ? 1 : 0) : (b as number))));
      break;
    case 'FP16':
    case 'BF16':
      throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `model "${model}": output "${spec.name}" is ${spec.datatype}, which only caphost.Tensor fields carry`);
    case 'FP32':
      bytes = Buffer.from(Float32Array.from(data as number[]).buffer);
      break;
    case 'FP64':
      bytes = Buffer.from(Float64Array.from(data as number[]).buffer);
      break;
    case 'INT32':
      bytes = Buffer.from(Int32Array.from(data as number[]).buffer);
      break;
    case 'UINT32':
      bytes = Buffer.from(Uint32Array.from(data as number[]).buffer);
      break;
    case 'INT64':
      bytes = Buffer.from(BigInt64Array.from(data as number[], (v) => BigInt(v)).buffer);
      break;
    case 'UINT64':
      bytes = Buffer.from(BigUint64Array.from(data as number[], (v) => BigInt(v)).buffer);
      break;
  }
  return { tensor: { name: spec.name, datatype: spec.datatype, shape, parameters: { binary_data_size: bytes.length } }, bytes };
}

/** Whether a message type has `caphost.Tensor` fields, whose device tensors need settleDeviceTensors. */
export function hasDeviceTensors(type: protobuf.Type): boolean {
  return type.fieldsArray.some((f) => f.resolvedType?.fullName === '.caphost.Tensor');
}

/**
 * An output's device tensors belong to the caller, here the server: each is downloaded into a
 * host tensor and freed, so the response can carry it and no device memory is left behind.
 */
export async function settleDeviceTensors(device: Device, message: Record<string, unknown>): Promise<void> {
  const held: DeviceTensor[] = [];
  for (const value of Object.values(message)) {
    if (value instanceof DeviceTensor) held.push(value);
    else if (Array.isArray(value)) for (const v of value) if (v instanceof DeviceTensor) held.push(v);
  }
  if (held.length === 0) return;
  try {
    for (const [key, value] of Object.entries(message)) {
      if (value instanceof DeviceTensor) message[key] = { dtype: value.dtype, shape: [...value.shape], data: await device.download(value) };
      else if (Array.isArray(value) && value.some((v) => v instanceof DeviceTensor)) {
        message[key] = await Promise.all(value.map(async (v) => (v instanceof DeviceTensor ? { dtype: v.dtype, shape: [...v.shape], data: await device.download(v) } : v)));
      }
    }
  } finally {
    for (const t of held) device.free(t);
  }
}

/** caphost.Tensor values in JSON: dtype, shape and the little-endian bytes in base64. */
export function tensorsToJson(message: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(message)) {
    const convert = (v: unknown): unknown => {
      const t = v as { dtype?: unknown; data?: unknown; shape?: unknown };
      if (t === null || typeof t !== 'object' || typeof t.dtype !== 'string' || !ArrayBuffer.isView(t.data)) return v;
      const data = t.data as ArrayBufferView;
      return { dtype: t.dtype, shape: t.shape, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
    };
    message[key] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
}

/** The inverse for the plain JSON route: `{ dtype, shape, data }` (base64 bytes or an array of numbers) → a host tensor. */
export function tensorsFromJson(type: protobuf.Type, message: Record<string, unknown>): void {
  for (const field of type.fieldsArray) {
    if (field.resolvedType?.fullName !== '.caphost.Tensor') continue;
    const convert = (v: unknown, at: string): unknown => {
      const t = v as { dtype?: unknown; data?: unknown; shape?: unknown };
      if (t === null || typeof t !== 'object' || ArrayBuffer.isView(t.data)) return v;
      const dtype = t.dtype ?? 'f32';
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
        throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `field "${at}": dtype must be one of f32, f16, bf16, i32, u8`, { details: { field: at } });
      }
      const d = dtype as DType;
      let data: HostArray;
      if (typeof t.data === 'string') {
        const bytes = Uint8Array.from(Buffer.from(t.data, 'base64'));
        if (bytes.length % DTYPE_BYTES[d] !== 0) throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `field "${at}": ${bytes.length} bytes is not a whole number of ${d} elements`, { details: { field: at } });
        data = hostView(d, bytes.buffer, 0, bytes.length / DTYPE_BYTES[d]);
      } else if (Array.isArray(t.data) && t.data.every((x) => typeof x === 'number') && (d === 'f32' || d === 'i32' || d === 'u8')) {
        const numbers = t.data as number[];
        data = d === 'f32' ? Float32Array.from(numbers) : d === 'i32' ? Int32Array.from(numbers) : Uint8Array.from(numbers);
      } else {
        throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `field "${at}": data must be base64 bytes, or an array of numbers for f32, i32 and u8`, { details: { field: at } });
      }
      return { dtype: d, shape: t.shape ?? [data.length], data };
    };
    const value = message[field.name];
    if (value === undefined || value === null) continue;
    message[field.name] = Array.isArray(value) ? value.map((v, i) => convert(v, `${field.name}[${i}]`)) : convert(value, field.name);
  }
}
