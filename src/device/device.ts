/**
 * `controller.device` and `ctx.device`: allocate, upload, download, view and free device
 * buffers, and run command lists, as one party (a session) of the controller's handle table.
 * The controller's session holds every right; a worker's session holds only what was granted
 * to it. Thread workers reach the same native table directly; every use is checked there.
 */
import { open } from 'node:fs/promises';
import { CaphostError, ErrorCode } from '../errors.js';
import { type CommandList } from './command-list.js';
import { type DeviceBinding, type NativeBackendInfo, type NativeDeviceInfo, type RightsBits, toCaphostError } from './device-binding.js';
import { DeviceTensor, checkShape, type Rights } from './device-tensor.js';
import { DTYPE_BYTES, dtypeOfArray, elementCount, hostView, isDType, type DType, type HostArray, type HostArrayOf } from './dtype.js';
import { readSafetensorsLayout, type SafetensorsDtype } from './safetensors-file.js';

export interface DeviceDescription extends NativeDeviceInfo {
  /** 'cpu' | 'cuda' | 'metal'. */
  readonly backend: string;
  readonly index: number;
}

/** Tensors of a safetensors file on a device: read-only, grantable to many workers at once. */
export class LoadedWeights extends Map<string, DeviceTensor> {
  /** Tensors of dtypes the device layer does not hold (I64, F64...), left out by name. */
  readonly skipped: readonly string[];
  /** The buffers behind the tensors (what a grant covers). */
  readonly handles: readonly string[];

  constructor(entries: Iterable<[string, DeviceTensor]>, skipped: string[], handles: string[]) {
    super(entries);
    this.skipped = Object.freeze(skipped);
    this.handles = Object.freeze(handles);
  }
}

const SAFETENSORS_TO_DTYPE: Partial<Record<SafetensorsDtype, DType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32', U8: 'u8', BOOL: 'u8' };

/** Views of buffers this large are kept (smaller ones cost V8 nothing to make again). */
const CACHE_VIEWS_FROM = 1 << 20;
/** Bytes of live buffers a Device keeps views of; the oldest view goes first. */
const MAX_CACHED_VIEW_BYTES = 2 ** 31;

export function rightsBits(rights: Rights): RightsBits {
  return rights === 'rw' ? 3 : 1;
}

export class Device {
  readonly #binding: DeviceBinding;
  readonly #session: string;
  readonly #backend: string;
  readonly #index: number;
  readonly #blocking: boolean;
  readonly description: DeviceDescription;
  /**
   * Views of large buffers, by handle. V8 counts an external buffer's bytes towards its GC
   * heuristics each time one is made, so a fresh 64 MiB view per call of the same buffer
   * would cost a collection per call; a kept one is re-checked against the handle table on
   * every use instead, and dropped once its buffer is freed.
   */
  readonly #views = new Map<string, ArrayBuffer>();
  #viewBytes = 0;

  /**
   * @param blocking run command lists and copies on the calling thread: right for a worker
   * thread, whose job is the handler; never for the controller's event loop.
   */
  constructor(binding: DeviceBinding, session: string, backend: NativeBackendInfo, options: { index?: number; blocking?: boolean } = {}) {
    const index = options.index ?? 0;
    const info = backend.devices[index];
    if (info === undefined) throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, `${backend.name} has no device ${index}`);
    this.#binding = binding;
    this.#session = session;
    this.#backend = backend.name;
    this.#index = index;
    this.#blocking = options.blocking === true;
    this.description = Object.freeze({ ...info, backend: backend.name, index });
  }

  get backend(): string {
    return this.#backend;
  }

  /** Whether view() gives the buffer's own memory (CPU; Apple shared storage). */
  get hostVisible(): boolean {
    return this.description.hostVisible;
  }

  /** This party's identity in the handle table (what grants name). */
  get session(): string {
    return this.#session;
  }

  /** A new buffer (contents undefined) holding one tensor, owned by this party. */
  alloc(dtype: DType, shape: readonly number[]): DeviceTensor {
    if (!isDType(dtype)) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `alloc: unknown dtype ${String(dtype)}`);
    checkShape(shape, 'alloc: shape');
    const bytes = elementCount(shape) * DTYPE_BYTES[dtype];
    const handle = this.#native(() => this.#binding.alloc(this.#session, this.#backend, this.#index, bytes));
    return new DeviceTensor(handle, 0, dtype, shape, 'rw');
  }

  /** A new buffer holding a copy of data. dtype defaults from the array (Uint16Array needs 'f16' or 'bf16'). */
  async upload(data: HostArray, shape?: readonly number[], dtype?: DType): Promise<DeviceTensor> {
    const type = dtype ?? dtypeOfArray(data);
    if (type === undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, "upload: a Uint16Array needs dtype 'f16' or 'bf16'");
    const t = this.alloc(type, shape ?? [data.length]);
    try {
      await this.write(t, data);
    } catch (err) {
      this.free(t);
      throw err;
    }
    return t;
  }

  /** Copies data into t (exactly t.byteLength bytes). */
  async write(t: DeviceTensor, data: ArrayBufferView): Promise<void> {
    this.#sameBytes('write', t, data);
    await this.#copy(true, t, data);
  }

  /** Copies t into target (exactly t.byteLength bytes). */
  async read(t: DeviceTensor, target: ArrayBufferView): Promise<void> {
    this.#sameBytes('read', t, target);
    await this.#copy(false, t, target);
  }

  /** A fresh host array holding a copy of t. */
  async download<D extends DType>(t: DeviceTensor & { dtype: D }): Promise<HostArrayOf[D]> {
    const out = hostView(t.dtype as D, new ArrayBuffer(t.byteLength), 0, t.size);
    await this.read(t, out);
    return out;
  }

  /**
   * t's own memory as a typed array, no copy (host-visible devices only). The memory stays
   * valid while the array lives, even after free(); writing through a read grant is refused
   * here but not prevented by the array itself, so a thread worker must respect its rights.
   */
  view<D extends DType>(t: DeviceTensor & { dtype: D }, rights: Rights = t.rights): HostArrayOf[D] {
    const buffer = this.#viewOf(t.handle, rightsBits(rights));
    if (t.byteOffset + t.byteLength > buffer.byteLength) {
      throw new CaphostError(ErrorCode.HANDLE_INVALID, `view: the tensor reaches byte ${t.byteOffset + t.byteLength}, beyond its buffer's ${buffer.byteLength}`);
    }
    return hostView(t.dtype as D, buffer, t.byteOffset, t.size);
  }

  /** Ends the buffer's use at once (its handle turns HANDLE_INVALID everywhere). */
  free(t: DeviceTensor | string): void {
    const handle = typeof t === 'string' ? t : t.handle;
    this.#dropView(handle);
    this.#native(() => this.#binding.free(this.#session, handle));
  }

  #viewOf(handle: string, rights: RightsBits): ArrayBuffer {
    const cached = this.#views.get(handle);
    if (cached !== undefined) {
      try {
        this.#binding.check(this.#session, handle, rights);
        return cached;
      } catch (err) {
        // Freed elsewhere, or a grant that ended: the view goes, and the reason with it.
        if ((err as { code?: string }).code === 'HANDLE_INVALID') this.#dropView(handle);
        throw toCaphostError(err);
      }
    }
    const buffer = this.#native(() => this.#binding.view(this.#session, handle, rights));
    if (buffer.byteLength >= CACHE_VIEWS_FROM) {
      // A kept view holds its buffer's memory: first let go of views whose buffers were freed.
      for (const h of [...this.#views.keys()]) {
        try {
          this.#binding.check(this.#session, h, 1);
        } catch {
          this.#dropView(h);
        }
      }
      while (this.#views.size > 0 && this.#viewBytes + buffer.byteLength > MAX_CACHED_VIEW_BYTES) this.#dropView(this.#views.keys().next().value!);
      this.#views.set(handle, buffer);
      this.#viewBytes += buffer.byteLength;
    }
    return buffer;
  }

  #dropView(handle: string): void {
    const buffer = this.#views.get(handle);
    if (buffer === undefined) return;
    this.#views.delete(handle);
    this.#viewBytes -= buffer.byteLength;
  }

  /** Runs the ops in order; resolves when they are done, rejects with the first failure. */
  async run(list: CommandList): Promise<void> {
    const { handles, words } = list.encoded();
    if (this.#blocking) return this.runSync(list);
    try {
      await this.#binding.run(this.#session, handles, words);
    } catch (err) {
      throw toCaphostError(err);
    }
  }

  /** As run(), on the calling thread: for worker threads only (it blocks). */
  runSync(list: CommandList): void {
    const { handles, words } = list.encoded();
    this.#native(() => this.#binding.runSync(this.#session, handles, words));
  }

  /** Gives session `to` rights on t's buffer (controller side: grants to workers). */
  grant(t: DeviceTensor | string, to: string, rights: Rights): void {
    const handle = typeof t === 'string' ? t : t.handle;
    this.#native(() => this.#binding.grant(this.#session, handle, to, rightsBits(rights)));
  }

  /** Takes over a buffer a worker session returned (controller only). */
  adopt(t: DeviceTensor | string, from: string): void {
    const handle = typeof t === 'string' ? t : t.handle;
    this.#native(() => this.#binding.adopt(this.#session, handle, from));
  }

  /** A new session for a worker (controller side); end it with endSession. */
  newSession(): string {
    return this.#native(() => this.#binding.newSession());
  }

  /** Ends a worker's session: its grants go, and buffers it still owned are freed. */
  endSession(session: string): void {
    this.#native(() => this.#binding.dropSession(session));
  }

  revoke(t: DeviceTensor | string, from: string): void {
    const handle = typeof t === 'string' ? t : t.handle;
    this.#native(() => this.#binding.revoke(this.#session, handle, from));
  }

  /** Buffers alive in the process's handle table and their bytes. */
  stats(): { handles: number; bytes: number } {
    return this.#binding.stats();
  }

  /**
   * Loads a safetensors file as read-only tensors. On host-visible devices the file is mapped
   * (copy-on-write, never read into the heap) and tensors are views of it; elsewhere its byte
   * buffer is uploaded once and sealed read-only.
   */
  async loadSafetensors(path: string): Promise<LoadedWeights> {
    const { header, dataStart, fileSize } = await readSafetensorsLayout(path);
    const skipped: string[] = [];
    const entries: [string, DeviceTensor][] = [];
    const handles: string[] = [];
    const place = (base: string, baseOffset: number): void => {
      for (const [name, info] of header.tensors) {
        const dtype = SAFETENSORS_TO_DTYPE[info.dtype];
        if (dtype === undefined) {
          skipped.push(name);
          continue;
        }
        const offset = baseOffset + info.dataOffsets[0];
        const shape = info.shape.length === 0 ? [1] : info.shape;
        if (shape.some((d) => d === 0)) {
          skipped.push(name);
          continue;
        }
        if (offset % DTYPE_BYTES[dtype] !== 0) {
          throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `safetensors file ${path}: tensor ${name} starts at byte ${offset}, not aligned to ${dtype}; re-save the file with an aligned header`);
        }
        entries.push([name, new DeviceTensor(base, offset, dtype, shape, 'r')]);
      }
    };
    if (this.hostVisible && this.#backend === 'cpu') {
      const handle = this.#native(() => this.#binding.mapFile(this.#session, path));
      handles.push(handle);
      try {
        place(handle, dataStart);
      } catch (err) {
        this.free(handle);
        throw err;
      }
    } else {
      const bytes = fileSize - dataStart;
      const handle = this.#native(() => this.#binding.alloc(this.#session, this.#backend, this.#index, bytes));
      handles.push(handle);
      try {
        await this.#uploadFile(path, handle, dataStart, bytes);
        this.#native(() => this.#binding.seal(this.#session, handle));
        place(handle, 0);
      } catch (err) {
        this.free(handle);
        throw err;
      }
    }
    return new LoadedWeights(entries, skipped, handles);
  }

  async #uploadFile(path: string, handle: string, start: number, bytes: number): Promise<void> {
    const chunk = new Uint8Array(Math.min(bytes, 64 << 20));
    const fh = await open(path, 'r');
    try {
      for (let done = 0; done < bytes; ) {
        const want = Math.min(chunk.byteLength, bytes - done);
        const { bytesRead } = await fh.read(chunk, 0, want, start + done);
        if (bytesRead === 0) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `safetensors file ${path} ended early`);
        const part = chunk.subarray(0, bytesRead);
        const pending = this.#binding.write(this.#session, handle, done, part, this.#blocking);
        if (pending !== undefined) await pending;
        done += bytesRead;
      }
    } catch (err) {
      throw toCaphostError(err);
    } finally {
      await fh.close();
    }
  }

  #sameBytes(op: string, t: DeviceTensor, data: ArrayBufferView): void {
    if (!(t instanceof DeviceTensor)) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${op}: not a DeviceTensor`);
    if (!ArrayBuffer.isView(data) || data.byteLength !== t.byteLength) {
      throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${op}: the host array must have the tensor's ${t.byteLength} bytes (${t.dtype} [${t.shape.join(', ')}]), got ${ArrayBuffer.isView(data) ? data.byteLength : 'no array'}`);
    }
  }

  async #copy(toDevice: boolean, t: DeviceTensor, data: ArrayBufferView): Promise<void> {
    try {
      const fn = toDevice ? this.#binding.write : this.#binding.read;
      const pending = fn.call(this.#binding, this.#session, t.handle, t.byteOffset, data, this.#blocking);
      if (pending !== undefined) await pending;
    } catch (err) {
      throw toCaphostError(err);
    }
  }

  #native<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toCaphostError(err);
    }
  }
}
