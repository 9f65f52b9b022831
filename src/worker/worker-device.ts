/**
 * A worker's way to the controller's device: `ctx.device` and `ctx.weights`. A thread worker
 * shares the controller's process, so it reaches the native handle table directly, as its own
 * session: it can use only what the controller granted it (its weights, each call's tensors)
 * and what it allocated itself. It runs command lists on its own thread, which blocks nothing
 * but the worker. Built on first use, so workers that never touch a device pay nothing.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { Device } from '../device/device.js';
import { loadDeviceBinding } from '../device/device-binding.js';
import { DeviceTensor } from '../device/device-tensor.js';
import type { DType } from '../device/dtype.js';
import type { WorkerDeviceBoot } from '../isolation/execution-strategy.js';

export interface WorkerResources {
  readonly device: Device;
  readonly weights: ReadonlyMap<string, DeviceTensor>;
}

export class WorkerDeviceAccess implements WorkerResources {
  #device: Device | undefined;
  #weights: ReadonlyMap<string, DeviceTensor> | undefined;

  /** @param unavailable why there is no device here, when boot is undefined */
  constructor(
    private readonly boot: WorkerDeviceBoot | undefined,
    private readonly unavailable: string,
  ) {}

  get device(): Device {
    if (this.#device === undefined) {
      const boot = this.#boot();
      const binding = loadDeviceBinding();
      this.#device = new Device(binding, boot.session, binding.openBackend(boot.backend), { blocking: true });
    }
    return this.#device;
  }

  get weights(): ReadonlyMap<string, DeviceTensor> {
    if (this.#weights === undefined) {
      const boot = this.#boot();
      this.#weights = new Map(boot.weights.map(([name, t]) => [name, new DeviceTensor(t.handle, t.byteOffset, t.dtype as DType, t.shape, 'r')]));
    }
    return this.#weights;
  }

  #boot(): WorkerDeviceBoot {
    if (this.boot === undefined) throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, this.unavailable);
    return this.boot;
  }
}
