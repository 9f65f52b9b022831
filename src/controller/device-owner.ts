/**
 * The controller's hold on its device: the backend it chose and why, its own session (every
 * right on every buffer), the weights it loaded for its workers, and a session per running
 * worker replica. It grants a call's input tensors to the worker that runs it for the call's
 * duration, and takes over the tensors a worker returns so that the caller owns them.
 */
import { CaphostError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { Device, type LoadedWeights } from '../device/device.js';
import { loadDeviceBinding } from '../device/device-binding.js';
import { backendLibraryPath, chooseDevice, type DeviceChoice } from '../device/device-selection.js';
import type { DeviceTensor } from '../device/device-tensor.js';
import type { WorkerDeviceBoot } from '../isolation/execution-strategy.js';
import type { PendingCall } from '../scheduler/pending-call.js';
import type { TensorBroker } from '../scheduler/scheduler.js';
import type { ResolvedOptions, ResolvedWorkerEntry } from './controller-options.js';

export interface DeviceStats {
  readonly backend: string;
  readonly name: string;
  readonly reason: string;
  readonly passedOver: DeviceChoice['passedOver'];
  readonly buffers: number;
  readonly bytesInUse: number;
}

export class DeviceOwner implements TensorBroker {
  readonly device: Device;
  readonly choice: DeviceChoice;
  /** What a worker passes to openBackend: 'cpu' or the GPU library's path. */
  readonly #backendRef: string;
  readonly #weights = new Map<string, Promise<LoadedWeights>>();
  readonly #sessions = new Set<string>();
  readonly #revoke = (call: PendingCall): void => this.#revokeCall(call);

  private constructor(device: Device, choice: DeviceChoice, backendRef: string) {
    this.device = device;
    this.choice = choice;
    this.#backendRef = backendRef;
  }

  static open(options: ResolvedOptions['device'], log: Logger): DeviceOwner {
    const binding = loadDeviceBinding();
    if (options.cpuThreads > 0) binding.setCpuThreads(options.cpuThreads);
    const choice = chooseDevice(options.kind, binding);
    const backend = choice.backend;
    const ref = backend.name === 'cpu' ? 'cpu' : backendLibraryPath(backend.name as 'cuda' | 'metal');
    const owner = new DeviceOwner(new Device(binding, binding.controllerSession(), backend), choice, ref);
    const passed = choice.passedOver.map((p) => `${p.backend}: ${p.reason}`).join('; ');
    log.info(`device: ${backend.name} (${backend.devices[0]?.name ?? 'device 0'}): ${choice.reason}${passed === '' ? '' : ` [passed over: ${passed}]`}`);
    return owner;
  }

  /** Loads an entry's weights once, whatever the number of replicas. */
  weightsFor(path: string): Promise<LoadedWeights> {
    let loading = this.#weights.get(path);
    if (loading === undefined) {
      loading = this.device.loadSafetensors(path);
      this.#weights.set(path, loading);
    }
    return loading;
  }

  /** A session for one run of a replica, with its entry's weights granted read-only. */
  async openSession(entry: ResolvedWorkerEntry): Promise<{ session: string; boot: WorkerDeviceBoot }> {
    const weights = entry.weights === undefined ? undefined : await this.weightsFor(entry.weights);
    const session = this.device.newSession();
    this.#sessions.add(session);
    try {
      for (const handle of weights?.handles ?? []) this.device.grant(handle, session, 'r');
    } catch (err) {
      this.closeSession(session);
      throw err;
    }
    return {
      session,
      boot: {
        session,
        backend: this.#backendRef,
        weights: weights === undefined ? [] : [...weights].map(([name, t]) => [name, t.toJSON()]),
      },
    };
  }

  closeSession(session: string): void {
    if (!this.#sessions.delete(session)) return;
    this.device.endSession(session);
  }

  grant(call: PendingCall, session: string): void {
    for (const t of call.tensors!) {
      try {
        this.device.grant(t, session, t.rights);
      } catch (err) {
        const e = err as CaphostError;
        throw new CaphostError(e.code ?? ErrorCode.HANDLE_INVALID, `a tensor of this "${call.group.text}" call cannot be granted: ${e.message}`, { cause: err });
      }
    }
    (call.grantedTo ??= []).push(session);
    call.onSettle = this.#revoke;
  }

  adopt(tensors: readonly DeviceTensor[], session: string): void {
    for (const t of tensors) this.device.adopt(t, session);
  }

  #revokeCall(call: PendingCall): void {
    for (const session of call.grantedTo ?? []) {
      for (const t of call.tensors ?? []) {
        try {
          this.device.revoke(t, session);
        } catch {
          // A tensor freed by its owner mid-call has no grant left to revoke.
        }
      }
    }
  }

  stats(): DeviceStats {
    const table = this.device.stats();
    return {
      backend: this.device.backend,
      name: this.device.description.name,
      reason: this.choice.reason,
      passedOver: this.choice.passedOver,
      buffers: table.handles,
      bytesInUse: table.bytes,
    };
  }

  /** Frees the weights and ends any session left. */
  async close(): Promise<void> {
    for (const session of [...this.#sessions]) this.closeSession(session);
    for (const loading of this.#weights.values()) {
      const weights = await loading.catch(() => undefined);
      for (const handle of weights?.handles ?? []) {
        try {
          this.device.free(handle);
        } catch {
          // Already freed.
        }
      }
    }
    this.#weights.clear();
  }
}
