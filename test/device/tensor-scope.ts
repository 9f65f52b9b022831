/**
 * The tensors one suite makes on one device, freed together when it ends, and a command list
 * built and run in one step. Its methods are bound, so a suite can take them apart.
 */
import { CommandList } from '../../src/device/command-list.js';
import type { Device } from '../../src/device/device.js';
import type { DeviceTensor } from '../../src/device/device-tensor.js';
import type { DType, HostArray } from '../../src/device/dtype.js';

export class TensorScope {
  readonly #live: DeviceTensor[] = [];

  constructor(private readonly dev: Device) {}

  readonly put = async (data: HostArray, shape: number[], dtype?: DType): Promise<DeviceTensor> => {
    const t = await this.dev.upload(data, shape, dtype);
    this.#live.push(t);
    return t;
  };

  readonly out = (dtype: DType, shape: number[]): DeviceTensor => {
    const t = this.dev.alloc(dtype, shape);
    this.#live.push(t);
    return t;
  };

  readonly run = async (build: (l: CommandList) => void): Promise<void> => {
    const l = new CommandList();
    build(l);
    await this.dev.run(l);
  };

  freeAll(): void {
    for (const t of this.#live.splice(0)) this.dev.free(t);
  }
}
