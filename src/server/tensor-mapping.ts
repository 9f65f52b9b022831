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
import { CaphostError, ErrorCode } from '../errors.js';

export type Datatype = 'BOOL' | 'UINT32' | 'UINT64' | 'INT32' | 'INT64' | 'FP32' | 'FP64' | 'BYTES';

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

const ELEMENT_BYTES: Record<Exclude<Datatype, 'BYTES'>, number> = { BOOL: 1, UINT32: 4, UINT64: 8, INT32: 4, INT64: 8, FP32: 4, FP64: 8 };

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
    if (tensor.datatype !== spec.datatype) throw mismatch(model, `input "${spec.name}" is ${spec.datatype}, not ${JSON.stringify(tensor.datatype)}`, spec.name);
    if (message[spec.name] !== undefined) throw mismatch(model, `input "${spec.name}" is given twice`, spec.name);
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

/** One output as JSON data (BYTES as UTF-8 text). */
export function jsonOutput(model: string, spec: TensorSpec, message: Record<string, unknown>): WireTensor {
  const { data, shape } = outputElements(model, spec, message);
  const json = spec.datatype === 'BYTES' && !spec.text ? data.map((b) => Buffer.from(b as Uint8Array).toString('utf8')) : data;
  return { name: spec.name, datatype: spec.datatype, shape, data: json };
}

/** One output as binary data: its JSON description (with binary_data_size) and the bytes that follow the header. */
export function binaryOutput(model: string, spec: TensorSpec, message: Record<string, unknown>): { tensor: WireTensor; bytes: Buffer } {
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
      bytes = Buffer.from(data.map((b) => (b ? 1 : 0)));
      break;
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
