import type { Logger } from '../logger.js';
import type { WorkerContext } from './define-worker.js';
import type { WorkerResources } from './worker-device.js';
import type { WorkerDevice } from './worker-device.js';
import type { DeviceTensor } from '../device/device-tensor.js';

/**
 * The per-call context. Its AbortController is made only when a handler reads `signal`,
 * because most handlers never do and the call path cannot afford one per call.
 */
export class CallContext implements WorkerContext {
  private controller: AbortController | undefined;
  private abortReason: Error | undefined;

  constructor(
    readonly capability: string,
    readonly deadline: number | undefined,
    readonly log: Logger,
    private readonly resources: WorkerResources,
  ) {}

  get device(): WorkerDevice {
    return this.resources.device;
  }

  get weights(): ReadonlyMap<string, DeviceTensor> {
    return this.resources.weights;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: Error): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}
