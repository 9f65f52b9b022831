/**
 * safetensors files (https://github.com/huggingface/safetensors), read and written in plain
 * TypeScript. Layout:
 *
 *   [8 bytes]  N, little-endian u64: byte length of the header
 *   [N bytes]  UTF-8 JSON object, possibly padded at the end with spaces (0x20):
 *                { "__metadata__"?: { [key: string]: string },
 *                  [tensorName]: { dtype, shape: number[], data_offsets: [begin, end] } }
 *   [rest]     the byte buffer; each tensor's data_offsets [begin, end) are relative to its start
 *
 * Element data is little-endian, row-major (C order).
 *
 * The reader validates strictly and throws CaphostError(INVALID_ARGUMENT) naming the file and,
 * where one is at fault, the tensor. Unlike the reference (Rust) implementation it does not
 * require the tensors to cover the byte buffer without gaps; it only refuses overlaps.
 *
 * The controller reads (it has file access; workers do not). With `into: 'shared'` the byte
 * buffer lands in one SharedArrayBuffer, so views of it can later be granted to many thread
 * workers without a copy. Nothing in JS can make that memory read-only: treat it as such.
 */
import { open } from 'node:fs/promises';
import { CaphostError, ErrorCode } from '../errors.js';

/** Element sizes in bytes of every dtype the format defines (sub-byte F4 etc. are refused). */
export const SAFETENSORS_DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_SIZES;

/**
 * The typed view a tensor's data gets: Float32Array for F32, Float64Array for F64, Int32Array,
 * Uint32Array, Int16Array, Uint16Array, BigInt64Array, BigUint64Array for the integer dtypes;
 * F16 and BF16 as Uint16Array of raw bits (Node 20 has no Float16Array); U8, BOOL and the F8
 * dtypes as Uint8Array; I8 as Int8Array.
 */
export type SafetensorsData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: number[];
  /** Typed view of the elements (see SafetensorsData for the mapping). */
  readonly data: SafetensorsData;
  /** The same memory as `data`, as bytes. */
  readonly bytes: Uint8Array;
  /**
   * True when the tensor's offset was not aligned for its element size, so `data` lives in its
   * own copy (shared too for 'shared') rather than in the file's byte buffer.
   */
  readonly copied: boolean;
}

export interface SafetensorsFile {
  readonly metadata: Record<string, string>;
  readonly tensors: Map<string, SafetensorsTensor>;
  /** The file's whole byte buffer (offset 0 = the first byte after the header). */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}

export interface ReadSafetensorsOptions {
  /** 'heap' (default): an ArrayBuffer; 'shared': a SharedArrayBuffer grantable to thread workers. */
  into?: 'heap' | 'shared';
}

/** One tensor's entry as validated from the header. */
export interface SafetensorsTensorInfo {
  readonly dtype: SafetensorsDtype;
  readonly shape: number[];
  /** [begin, end) relative to the start of the byte buffer. */
  readonly dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  readonly metadata: Record<string, string>;
  /** In header order. */
  readonly tensors: Map<string, SafetensorsTensorInfo>;
}

/** The reference implementation's limit on N. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function invalid(file: string, message: string, details: Record<string, unknown> = {}): CaphostError {
  return new CaphostError(ErrorCode.INVALID_ARGUMENT, `safetensors file ${file}: ${message}`, { details: { file, ...details } });
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZES, value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates the JSON header (the N bytes after the length prefix, padding included) against a
 * byte buffer of `bufferByteLength` bytes. `file` only names the source in errors.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, bufferByteLength: number, file = '<memory>'): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (err) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `safetensors file ${file}: header is not valid UTF-8`, { cause: err, details: { file } });
  }
  // The format pads only at the end, with spaces; the reference reader also requires '{' first.
  if (!text.startsWith('{')) throw invalid(file, 'header does not start with "{"');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text); // JSON allows the trailing space padding
  } catch (err) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `safetensors file ${file}: header is not valid JSON (${(err as Error).message})`, {
      cause: err,
      details: { file },
    });
  }
  if (!isPlainObject(parsed)) throw invalid(file, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw invalid(file, '"__metadata__" is not an object of strings');
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') throw invalid(file, `"__metadata__" value for "${key}" is not a string`, { key });
        Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const where = `tensor "${name}"`;
    const ctx = { tensor: name };
    if (!isPlainObject(entry)) throw invalid(file, `${where}: entry is not an object`, ctx);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isDtype(dtype)) throw invalid(file, `${where}: unknown dtype ${JSON.stringify(dtype)}`, { ...ctx, dtype });
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid(file, `${where}: shape ${JSON.stringify(shape)} is not an array of non-negative integers`, ctx);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o): o is number => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw invalid(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] of non-negative integers`, ctx);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw invalid(file, `${where}: data_offsets [${begin}, ${end}] end before begin`, ctx);
    let elements = 1;
    for (const d of shape) {
      elements *= d;
      if (!Number.isSafeInteger(elements)) throw invalid(file, `${where}: shape ${JSON.stringify(shape)} has too many elements`, ctx);
    }
    const expected = elements * SAFETENSORS_DTYPE_SIZES[dtype];
    if (end - begin !== expected) {
      throw invalid(
        file,
        `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${expected}`,
        ctx,
      );
    }
    if (end > bufferByteLength) {
      throw invalid(file, `${where}: data_offsets [${begin}, ${end}] run past the end of the ${bufferByteLength}-byte buffer`, ctx);
    }
    tensors.set(name, { dtype, shape: [...shape], dataOffsets: [begin, end] });
  }

  // Overlap: sort by begin; zero-size tensors occupy nothing and overlap nothing.
  const spans = [...tensors].filter(([, t]) => t.dataOffsets[1] > t.dataOffsets[0]).sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1]!;
    const [name, cur] = spans[i]!;
    if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
      throw invalid(
        file,
        `tensor "${name}": data_offsets [${cur.dataOffsets.join(', ')}] overlap tensor "${prevName}" [${prev.dataOffsets.join(', ')}]`,
        { tensor: name, other: prevName },
      );
    }
  }
  return { metadata, tensors };
}

type ViewCtor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsData; readonly BYTES_PER_ELEMENT: number };

const VIEW: Record<SafetensorsDtype, ViewCtor> = {
  BOOL: Uint8Array,
  U8: Uint8Array,
  I8: Int8Array,
  F8_E5M2: Uint8Array,
  F8_E4M3: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  F32: Float32Array,
  F64: Float64Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

const READ_CHUNK = 1 << 30;

/** Reads and validates a safetensors file; see the module comment for the layout and errors. */
export async function readSafetensors(path: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const into = options.into ?? 'heap';
  if (into !== 'heap' && into !== 'shared') {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `readSafetensors: options.into must be 'heap' or 'shared', got ${String(into)}`);
  }
  if (!LITTLE_ENDIAN) {
    // Typed views use the host's byte order; a big-endian host would need byte-swapped copies.
    throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, 'readSafetensors: big-endian hosts are not supported');
  }
  const fh = await open(path, 'r');
  try {
    const { header, dataStart, fileSize } = await readHeaderFrom(fh, path);
    const headerLength = dataStart - 8;
    const bufferLength = fileSize - dataStart;
    // The byte buffer goes into memory of its own, so its offset 0 is aligned whatever N is.
    const buffer = into === 'shared' ? new SharedArrayBuffer(bufferLength) : new ArrayBuffer(bufferLength);
    await readFully(fh, new Uint8Array(buffer), 8 + headerLength, path);

    const tensors = new Map<string, SafetensorsTensor>();
    for (const [name, info] of header.tensors) {
      const ctor = VIEW[info.dtype];
      const [begin, end] = info.dataOffsets;
      const length = (end - begin) / ctor.BYTES_PER_ELEMENT;
      if (begin % ctor.BYTES_PER_ELEMENT === 0) {
        tensors.set(name, {
          dtype: info.dtype,
          shape: info.shape,
          data: new ctor(buffer, begin, length),
          bytes: new Uint8Array(buffer, begin, end - begin),
          copied: false,
        });
      } else {
        // A typed array view needs byteOffset % element size === 0. The format does not promise
        // that (our writer and the reference one do align), so this tensor is copied into an
        // aligned buffer of its own, shared when the file's buffer is.
        const own = into === 'shared' ? new SharedArrayBuffer(end - begin) : new ArrayBuffer(end - begin);
        const bytes = new Uint8Array(own);
        bytes.set(new Uint8Array(buffer, begin, end - begin));
        tensors.set(name, { dtype: info.dtype, shape: info.shape, data: new ctor(own, 0, length), bytes, copied: true });
      }
    }
    return { metadata: header.metadata, tensors, buffer };
  } finally {
    await fh.close();
  }
}

/** Where a file's tensors lie, from its header alone (the data is not read). */
export interface SafetensorsLayout {
  readonly header: SafetensorsHeader;
  /** File offset of the byte buffer: tensor offsets are relative to it. */
  readonly dataStart: number;
  readonly fileSize: number;
}

export async function readSafetensorsLayout(path: string): Promise<SafetensorsLayout> {
  const fh = await open(path, 'r');
  try {
    return await readHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

async function readHeaderFrom(fh: import('node:fs/promises').FileHandle, path: string): Promise<SafetensorsLayout> {
  const fileSize = (await fh.stat()).size;
  if (fileSize < 8) throw invalid(path, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const prefix = new Uint8Array(8);
  await readFully(fh, prefix, 0, path);
  const n = new DataView(prefix.buffer).getBigUint64(0, true);
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw invalid(path, `header length ${n} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLength = Number(n);
  if (8 + headerLength > fileSize) {
    throw invalid(path, `header length ${headerLength} runs past the end of the ${fileSize}-byte file (truncated?)`);
  }
  if (headerLength < 2) throw invalid(path, `header length ${headerLength} is too short for a JSON object`);
  const headerBytes = new Uint8Array(headerLength);
  await readFully(fh, headerBytes, 8, path);
  const bufferLength = fileSize - 8 - headerLength;
  const header = parseSafetensorsHeader(headerBytes, bufferLength, path);

  return { header, dataStart: 8 + headerLength, fileSize };
}

async function readFully(fh: import('node:fs/promises').FileHandle, target: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(READ_CHUNK, target.byteLength - done);
    const { bytesRead } = await fh.read(target, done, length, position + done);
    if (bytesRead === 0) throw invalid(path, `file ended early (was it truncated while being read?)`);
    done += bytesRead;
  }
}

/** A tensor to write: dtype may be left out when the typed array decides it. */
export interface SafetensorsTensorInput {
  dtype?: SafetensorsDtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

function inferDtype(data: ArrayBufferView): SafetensorsDtype | undefined {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint8Array) return 'U8';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof BigUint64Array) return 'U64';
  return undefined; // Uint16Array could be U16, F16 or BF16: say which.
}

/**
 * Builds a safetensors file in memory. Layout matches the reference writer, so the reference
 * reader (which requires the tensors to cover the byte buffer without gaps) accepts it:
 *  - tensors ordered by element size (largest first), then name, packed without gaps, so every
 *    offset is a multiple of its tensor's element size (8-byte dtypes at multiples of 8);
 *  - the header padded with spaces so the byte buffer starts at a file offset multiple of 8
 *    (what an mmap of the file needs for aligned views).
 */
export function encodeSafetensors(
  tensors: Map<string, SafetensorsTensorInput> | Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const planned = entries.map(([name, t]) => {
    if (name === '__metadata__') throw new CaphostError(ErrorCode.INVALID_ARGUMENT, 'writeSafetensors: "__metadata__" is reserved, not a tensor name');
    const dtype = t.dtype ?? inferDtype(t.data);
    if (!isDtype(dtype)) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `writeSafetensors: tensor "${name}": give a dtype (got ${String(t.dtype)} for ${t.data.constructor.name})`, {
        details: { tensor: name },
      });
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `writeSafetensors: tensor "${name}": shape ${JSON.stringify(t.shape)} is not non-negative integers`, {
        details: { tensor: name },
      });
    }
    const bytes = t.shape.reduce((a, d) => a * d, 1) * SAFETENSORS_DTYPE_SIZES[dtype];
    if (t.data.byteLength !== bytes) {
      throw new CaphostError(
        ErrorCode.INVALID_ARGUMENT,
        `writeSafetensors: tensor "${name}": ${dtype} ${JSON.stringify(t.shape)} needs ${bytes} bytes, data has ${t.data.byteLength}`,
        { details: { tensor: name } },
      );
    }
    return { name, dtype, shape: [...t.shape], data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
  });
  planned.sort((a, b) => SAFETENSORS_DTYPE_SIZES[b.dtype] - SAFETENSORS_DTYPE_SIZES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Null prototype: a tensor named "__proto__" must stay an ordinary key.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `writeSafetensors: metadata "${k}" is not a string`);
    }
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  for (const t of planned) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.byteLength) / 8) * 8 - 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + padded);
  let at = 8 + padded;
  for (const t of planned) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

/** Writes a safetensors file (see encodeSafetensors for the layout). */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, SafetensorsTensorInput> | Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeSafetensors(tensors, metadata);
  const fh = await open(path, 'w');
  try {
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await fh.write(bytes, done, Math.min(READ_CHUNK, bytes.byteLength - done));
      done += bytesWritten;
    }
  } finally {
    await fh.close();
  }
}
