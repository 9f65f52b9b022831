/**
 * `ctx.device` in a process worker: the same calls as a thread worker's Device, each one a
 * request to the controller, which runs it as this worker's session (the worker never holds a
 * session token). A view maps the descriptor the controller passes for a granted buffer:
 * shared memory of exactly that buffer, read-only for a read grant. Calls block this worker's
 * thread until the controller answers; they never block the controller.
 */
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';
import type { CommandList } from '../device/command-list.js';
import type { WorkerDevice } from './worker-device.js';
import type { DeviceDescription } from '../device/device.js';
import { rightsBits } from '../device/device.js';
import { DeviceTensor, checkShape, type Rights } from '../device/device-tensor.js';
import { dtypeOfArray, hostView, isDType, type DType, type HostArray, type HostArrayOf } from '../device/dtype.js';
import { DEVICE_CHUNK_BYTES, type DeviceReply, type DeviceRequest, type ProcessDeviceBoot } from '../isolation/device-messages.js';

type Ask = (request: DeviceRequest) => { reply: DeviceReply; fd: number };
type MapFd = (fd: number, bytes: number, readOnly: boolean) => ArrayBuffer;

export class RemoteDevice implements WorkerDevice {
  readonly description: DeviceDescription;
  /** Mappings already made, by handle and rights (a mapping cannot be revoked, only re-checked). */
  readonly #views = new Map<string, ArrayBuffer>();

  constructor(
    private readonly boot: ProcessDeviceBoot,
    private readonly ask: Ask,
    private readonly mapFd: MapFd,
  ) {
    this.description = Object.freeze({ backend: boot.backend, index: 0, name: boot.name, totalMemory: 0, hostVisible: boot.hostVisible, computeMajor: 0, computeMinor: 0, threads: 0 });
  }

  get backend(): string {
    return this.boot.backend;
  }

  get hostVisible(): boolean {
    return this.boot.hostVisible;
  }

  #call(request: DeviceRequest): { reply: DeviceReply & { ok: true }; fd: number } {
    const { reply, fd } = this.ask(request);
    if (!reply.ok) throw new CaphostError(isErrorCode(reply.code) ? reply.code : ErrorCode.NATIVE_ERROR, reply.message);
    return { reply, fd };
  }

  alloc(dtype: DType, shape: readonly number[]): DeviceTensor {
    if (!isDType(dtype)) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `alloc: unknown dtype ${String(dtype)}`);
    checkShape(shape, 'alloc: shape');
    const { reply } = this.#call({ type: 'device', op: 'alloc', dtype, shape: [...shape] });
    return new DeviceTensor(reply.handle!, 0, dtype, shape, 'rw');
  }

  async upload(data: HostArray, shape?: readonly number[], dtype?: DType): Promise<DeviceTensor> {
    const type = dtype ?? dtypeOfArray(data);
    if (type === undefined) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, "upload: a Uint16Array needs dtype 'f16' or 'bf16'");
    const t = this.alloc(type, shape ?? [data.length]);
    await this.write(t, data);
    return t;
  }

  async write(t: DeviceTensor, data: ArrayBufferView): Promise<void> {
    sameBytes('write', t, data);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let at = 0; at < bytes.byteLength; at += DEVICE_CHUNK_BYTES) {
      const part = bytes.subarray(at, at + DEVICE_CHUNK_BYTES);
      this.#call({ type: 'device', op: 'write', handle: t.handle, byteOffset: t.byteOffset + at, data: Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('base64') });
    }
  }

  async read(t: DeviceTensor, target: ArrayBufferView): Promise<void> {
    sameBytes('read', t, target);
    const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    for (let at = 0; at < bytes.byteLength; at += DEVICE_CHUNK_BYTES) {
      const length = Math.min(DEVICE_CHUNK_BYTES, bytes.byteLength - at);
      const { reply } = this.#call({ type: 'device', op: 'read', handle: t.handle, byteOffset: t.byteOffset + at, length });
      bytes.set(Buffer.from(reply.data ?? '', 'base64'), at);
    }
  }

  async download<D extends DType>(t: DeviceTensor & { dtype: D }): Promise<HostArrayOf[D]> {
    const out = hostView(t.dtype as D, new ArrayBuffer(t.byteLength), 0, t.size);
    await this.read(t, out);
    return out;
  }

  /** The granted buffer's own memory, mapped into this process (host-visible devices only). */
  view<D extends DType>(t: DeviceTensor & { dtype: D }, rights: Rights = t.rights): HostArrayOf[D] {
    if (!this.hostVisible) throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, `view: ${this.backend} buffers are not visible to the host; use download()`);
    const bits = rightsBits(rights) as 1 | 3;
    const key = `${t.handle}:${bits}`;
    let buffer = this.#views.get(key);
    if (buffer !== undefined) {
      this.#call({ type: 'device', op: 'check', handle: t.handle, rights: bits });
    } else {
      const { reply, fd } = this.#call({ type: 'device', op: 'view', handle: t.handle, rights: bits });
      if (fd < 0) throw new CaphostError(ErrorCode.NATIVE_ERROR, 'view: the controller sent no descriptor');
      buffer = this.mapFd(fd, reply.bytes!, bits === 1);
      this.#views.set(key, buffer);
    }
    if (t.byteOffset + t.byteLength > buffer.byteLength) {
      throw new CaphostError(ErrorCode.HANDLE_INVALID, `view: the tensor reaches byte ${t.byteOffset + t.byteLength}, beyond its buffer's ${buffer.byteLength}`);
    }
    return hostView(t.dtype as D, buffer, t.byteOffset, t.size);
  }

  free(t: DeviceTensor | string): void {
    const handle = typeof t === 'string' ? t : t.handle;
    this.#views.delete(`${handle}:1`);
    this.#views.delete(`${handle}:3`);
    this.#call({ type: 'device', op: 'free', handle });
  }

  async run(list: CommandList): Promise<void> {
    this.runSync(list);
  }

  runSync(list: CommandList): void {
    const { handles, words } = list.encoded();
    this.#call({ type: 'device', op: 'run', handles: [...handles], words: Array.from(words) });
  }
}

function sameBytes(op: string, t: DeviceTensor, data: ArrayBufferView): void {
  if (!(t instanceof DeviceTensor)) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${op}: not a DeviceTensor`);
  if (!ArrayBuffer.isView(data) || data.byteLength !== t.byteLength) {
    throw new CaphostError(ErrorCode.INVALID_ARGUMENT, `${op}: the host array must have the tensor's ${t.byteLength} bytes, got ${ArrayBuffer.isView(data) ? data.byteLength : 'no array'}`);
  }
}

