/**
 * A worker's way to the controller's device: `ctx.device` and `ctx.weights`. A thread worker
 * shares the controller's process, so it reaches the native handle table directly, as its own
 * session: it can use only what the controller granted it (its weights, each call's tensors)
 * and what it allocated itself, and it runs command lists on its own thread. A process worker
 * asks the controller for each operation (remote-device.ts). Built on first use, so workers
 * that never touch a device pay nothing.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import { Device } from '../device/device.js';
import { loadDeviceBinding } from '../device/device-binding.js';
import { DeviceTensor } from '../device/device-tensor.js';
import type { DType } from '../device/dtype.js';
import type { WorkerDeviceBoot } from '../isolation/execution-strategy.js';
import type { Logger } from '../logger.js';
import type { SetupContext } from './define-worker.js';

/** What a worker can do with the device: the same in thread and process workers. */
export type WorkerDevice = Pick<Device, 'backend' | 'hostVisible' | 'description' | 'alloc' | 'upload' | 'write' | 'read' | 'download' | 'view' | 'free' | 'run' | 'runSync'>;

export interface WorkerResources {
  readonly device: WorkerDevice;
  readonly weights: ReadonlyMap<string, DeviceTensor>;
}

type WeightEntries = WorkerDeviceBoot['weights'];

export class WorkerDeviceAccess implements WorkerResources {
  #device: WorkerDevice | undefined;
  #weights: ReadonlyMap<string, DeviceTensor> | undefined;

  /** @param unavailable why there is no device here, when open is undefined */
  constructor(
    private readonly open: (() => WorkerDevice) | undefined,
    private readonly weightEntries: WeightEntries,
    private readonly unavailable: string,
  ) {}

  /** A thread worker's access: its own session on the process's handle table. */
  static forThread(boot: WorkerDeviceBoot | undefined, unavailable: string): WorkerDeviceAccess {
    if (boot === undefined) return new WorkerDeviceAccess(undefined, [], unavailable);
    return new WorkerDeviceAccess(
      () => {
        const binding = loadDeviceBinding();
        return new Device(binding, boot.session, binding.openBackend(boot.backend), { blocking: true });
      },
      boot.weights,
      unavailable,
    );
  }

  /** What setup and teardown see: the device and weights come from here, on first use. */
  setupContext(log: Logger, replica: number, configJson: string | undefined): SetupContext {
    const resources = this;
    return {
      log,
      replica,
      config: configJson === undefined ? undefined : JSON.parse(configJson),
      get device() {
        return resources.device;
      },
      get weights() {
        return resources.weights;
      },
    };
  }

  get device(): WorkerDevice {
    if (this.open === undefined) throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, this.unavailable);
    this.#device ??= this.open();
    return this.#device;
  }

  get weights(): ReadonlyMap<string, DeviceTensor> {
    if (this.open === undefined) throw new CaphostError(ErrorCode.DEVICE_UNAVAILABLE, this.unavailable);
    this.#weights ??= new Map(this.weightEntries.map(([name, t]) => [name, new DeviceTensor(t.handle, t.byteOffset, t.dtype as DType, t.shape, 'r')]));
    return this.#weights;
  }
}
