import protobuf from 'protobufjs';
import { CaphostError, ErrorCode } from '../errors.js';
import type { UnfinishedWriter } from '../scheduler/payload.js';
import type { ArenaRef } from '../scheduler/slot-ring.js';
import { Slot } from '../scheduler/ring-layout.js';
import { DeviceTensor } from '../device/device-tensor.js';
import { TENSOR_PROTO, TENSOR_TYPE, fromWireTensor, toWireTensor } from './tensor-field.js';

/** What a worker module declares for one capability: proto source and the two message names. */
export interface SchemaSource {
  /** .proto source text (already read from disk if the module gave a path). */
  readonly proto: string;
  readonly input: string;
  readonly output: string;
}

const EMPTY = Buffer.alloc(0);

/**
 * Reads protobuf straight out of shared memory. protobufjs's readers return bytes fields as
 * views of their input, which here is a ring slot about to be reused, so bytes are copied out,
 * into Node's pooled small buffers where they fit.
 */
class CopyingReader extends protobuf.BufferReader {
  declare buf: Buffer;
  declare pos: number;
  declare len: number;

  override bytes(): Buffer {
    const length = this.uint32();
    const start = this.pos;
    const end = start + length;
    if (end > this.len) throw new RangeError(`index out of range: ${start} + ${length} > ${this.len}`);
    this.pos = end;
    const out = Buffer.allocUnsafe(length);
    if (length > 96) this.buf.copy(out, 0, start, end);
    else for (let i = 0; i < length; i++) out[i] = this.buf[start + i]!;
    return out;
  }
}

interface BytesField {
  readonly name: string;
  readonly id: number;
}

interface TensorField {
  readonly name: string;
  readonly repeated: boolean;
}

function offsetNumber(value: unknown): number {
  // uint64 decodes to a Long when long.js is present.
  return typeof value === 'object' && value !== null ? (value as { toNumber(): number }).toNumber() : Number(value ?? 0);
}

/** One compiled message type with the checks and the arena-aware codec the call path needs. */
export class MessageCodec {
  private readonly bytesFields: readonly BytesField[];
  private readonly fieldNames: ReadonlySet<string>;
  private readonly bytesById: ReadonlyMap<number, string>;
  private readonly tensorFields: readonly TensorField[];
  private readonly reader = new CopyingReader(EMPTY);

  constructor(
    readonly type: protobuf.Type,
    private readonly label: string,
  ) {
    const bytes: BytesField[] = [];
    for (const field of type.fieldsArray) {
      if (field.type === 'bytes' && !field.repeated && !field.map) bytes.push({ name: field.name, id: field.id });
    }
    this.bytesFields = bytes;
    this.bytesById = new Map(bytes.map((f) => [f.id, f.name]));
    this.fieldNames = new Set(type.fieldsArray.map((f) => f.name));
    this.tensorFields = type.fieldsArray
      .filter((f) => f.resolvedType?.fullName === `.${TENSOR_TYPE}` && !f.map)
      .map((f) => ({ name: f.name, repeated: f.repeated }));
  }

  /** Whether the message has caphost.Tensor fields (top level). */
  get hasTensors(): boolean {
    return this.tensorFields.length > 0;
  }

  /** The DeviceTensors in a message's tensor fields (what a call grants, what an output hands over). */
  deviceTensorsOf(message: Record<string, unknown>): DeviceTensor[] {
    const out: DeviceTensor[] = [];
    for (const field of this.tensorFields) {
      const value = message[field.name];
      if (value instanceof DeviceTensor) out.push(value);
      else if (field.repeated && Array.isArray(value)) for (const v of value) if (v instanceof DeviceTensor) out.push(v);
    }
    return out;
  }

  /** The message with tensor values replaced by their wire form (a copy; the caller's object is untouched). */
  private toWire(message: Record<string, unknown>): Record<string, unknown> {
    let plain = message;
    for (const field of this.tensorFields) {
      const value = message[field.name];
      if (value === undefined || value === null) continue;
      if (plain === message) plain = { ...message };
      if (field.repeated) {
        if (!Array.isArray(value)) throw this.mismatch(`field "${field.name}": must be an array of tensors`, field.name);
        plain[field.name] = value.map((v, i) => toWireTensor(v, this.label, `${field.name}[${i}]`));
      } else {
        plain[field.name] = toWireTensor(value, this.label, field.name);
      }
    }
    return plain;
  }

  private fromWire(message: Record<string, unknown>): void {
    for (const field of this.tensorFields) {
      const value = message[field.name];
      if (value === undefined || value === null) continue;
      if (field.repeated) {
        message[field.name] = (value as Record<string, unknown>[]).map((v, i) => fromWireTensor(wireOf(v), this.label, `${field.name}[${i}]`));
      } else {
        message[field.name] = fromWireTensor(wireOf(value as Record<string, unknown>), this.label, field.name);
      }
    }
  }

  /**
   * Throws SCHEMA_MISMATCH naming the first field that does not fit; returns the message as it
   * was checked (tensor fields in their wire form), which encode(…, true) takes without converting again.
   */
  check(input: unknown): object {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw this.mismatch(`must be an object with the fields of ${this.type.name}`, undefined);
    }
    if (input instanceof this.type.ctor) return input;
    const message = this.tensorFields.length > 0 ? this.toWire(input as Record<string, unknown>) : input;
    for (const key in message) {
      if (!this.fieldNames.has(key) && (message as Record<string, unknown>)[key] !== undefined) {
        throw this.mismatch(`has field "${key}", which ${this.type.name} does not define`, key);
      }
    }
    const problem = this.type.verify(message as Record<string, unknown>);
    if (problem !== null) {
      // protobufjs says "field: what expected", or "field.object expected" for a nested message.
      const match = /^([\w.]+): (.*)$/.exec(problem) ?? /^([\w.]+)\.(object expected)$/.exec(problem);
      const field = match?.[1] ?? '';
      throw this.mismatch(`field "${field}": ${match?.[2] ?? problem}`, field);
    }
    return message;
  }

  private mismatch(what: string, field: string | undefined): CaphostError {
    return new CaphostError(ErrorCode.SCHEMA_MISMATCH, `${this.label} ${what}`, {
      details: field === undefined ? { message: this.type.name } : { message: this.type.name, field },
    });
  }

  /**
   * Encodes `message`. Top-level bytes fields whose value is a view of `arena` are left out of
   * the protobuf and returned as references, so shared memory crosses without a copy.
   */
  encode(message: object, arena: ArrayBufferLike | null, checked = false): { bytes: UnfinishedWriter; refs: ArenaRef[] | null } {
    let refs: ArenaRef[] | null = null;
    if (!checked && this.tensorFields.length > 0) message = this.toWire(message as Record<string, unknown>);
    let plain = message as Record<string, unknown>;
    for (let i = 0; i < this.bytesFields.length; i++) {
      const field = this.bytesFields[i]!;
      const value = plain[field.name];
      if (!ArrayBuffer.isView(value)) continue;
      // A slot holds at most MAX_REFS references; further arena views are copied like other bytes.
      const shared = value.buffer === arena && (refs === null || refs.length < Slot.MAX_REFS);
      if (!shared && value instanceof Uint8Array) continue;
      if (plain === message) plain = { ...plain };
      if (shared) {
        (refs ??= []).push({ field: field.id, offset: value.byteOffset, length: value.byteLength });
        plain[field.name] = undefined;
      } else {
        // protobufjs would copy element by element; a typed array in a bytes field means its bytes.
        plain[field.name] = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      }
    }
    return { bytes: this.type.encode(plain) as unknown as UnfinishedWriter, refs };
  }

  /** Decodes `length` bytes of `bytes` from `start`, in place; bytes fields come out as private copies. */
  decode(bytes: Buffer, start: number, length: number, refs: readonly ArenaRef[] | null, arena: ArrayBufferLike | null): Record<string, unknown> {
    const reader = this.reader;
    reader.buf = bytes;
    reader.pos = start;
    reader.len = start + length;
    const message = this.type.decode(reader, length) as unknown as Record<string, unknown>;
    if (refs !== null) {
      if (arena === null) throw new CaphostError(ErrorCode.NATIVE_ERROR, `${this.label} carries shared-arena references but no arena is mapped`);
      for (const ref of refs) {
        const name = this.bytesById.get(ref.field);
        if (name === undefined || ref.offset + ref.length > arena.byteLength) {
          throw new CaphostError(ErrorCode.SCHEMA_MISMATCH, `${this.label} has an arena reference that does not fit its schema`);
        }
        message[name] = new Uint8Array(arena, ref.offset, ref.length);
      }
    }
    if (this.tensorFields.length > 0) this.fromWire(message);
    return message;
  }
}

function wireOf(v: Record<string, unknown>): { dtype: string; shape: number[]; handle?: Uint8Array; byte_offset?: number; rights?: number; data?: Uint8Array } {
  return {
    dtype: String(v['dtype'] ?? ''),
    shape: (v['shape'] as number[] | undefined) ?? [],
    handle: v['handle'] as Uint8Array | undefined,
    byte_offset: offsetNumber(v['byte_offset']),
    rights: v['rights'] as number | undefined,
    data: v['data'] as Uint8Array | undefined,
  };
}

export interface CapabilitySchema {
  readonly input: MessageCodec;
  readonly output: MessageCodec;
}

function lookup(root: protobuf.Root, name: string, capability: string, role: string): protobuf.Type {
  try {
    return root.lookupType(name);
  } catch {
    throw new CaphostError(
      ErrorCode.INVALID_WORKER,
      `capability ${capability}: schema.${role} names message "${name}", which its proto does not define`,
      { details: { capability, role, message: name } },
    );
  }
}

/** Compiles a capability's schema; errors name the capability and say what to fix. */
export function compileSchema(capability: string, source: SchemaSource): CapabilitySchema {
  let root: protobuf.Root;
  try {
    // caphost.Tensor is part of every schema, so a proto may use it with or without its import.
    root = protobuf.parse(TENSOR_PROTO, { keepCase: true }).root;
    protobuf.parse(source.proto, root, { keepCase: true });
    root.resolveAll();
  } catch (cause) {
    throw new CaphostError(
      ErrorCode.INVALID_WORKER,
      `capability ${capability}: its proto does not compile: ${(cause as Error).message}`,
      { cause, details: { capability } },
    );
  }
  return {
    input: new MessageCodec(lookup(root, source.input, capability, 'input'), `${capability} input`),
    output: new MessageCodec(lookup(root, source.output, capability, 'output'), `${capability} output`),
  };
}
