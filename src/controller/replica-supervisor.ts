import { CaphostError, ErrorCode } from '../errors.js';
import type { AdvertisedCapability } from '../isolation/control-messages.js';
import type { ChannelMemory, ExecutionStrategy, WorkerInstance } from '../isolation/execution-strategy.js';
import type { Logger, LogLevel } from '../logger.js';
import { ControllerChannel } from '../scheduler/controller-channel.js';
import { type ChannelConfig, computeLayout } from '../scheduler/ring-layout.js';
import type { Replica } from '../scheduler/replica.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ResolvedWorkerEntry, RestartPolicy } from './controller-options.js';
import type { DeviceOwner } from './device-owner.js';
import { deviceRequestHandler } from './device-requests.js';

export type ReplicaState = 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

/** The counters a channel keeps of wake-ups that went missing and how they were recovered. */
const WAKE_COUNTERS = ['missedWakeups', 'workerNudges', 'stalledParks'] as const;
export type WakeCounter = (typeof WAKE_COUNTERS)[number];

export interface SupervisorContext {
  readonly strategy: ExecutionStrategy;
  readonly scheduler: Scheduler;
  readonly channelConfig: ChannelConfig;
  readonly arena: SharedArrayBuffer | null;
  readonly log: Logger;
  readonly logLevel: LogLevel;
  readonly restart: Required<RestartPolicy>;
  readonly device: DeviceOwner | null;
}

/**
 * Keeps one replica's worker running: starts it, hands its channel to the scheduler, and on a
 * crash restarts it with exponential backoff, giving up after too many crashes in a window.
 */
export class ReplicaSupervisor {
  state: ReplicaState = 'starting';
  restarts = 0;
  private instance: WorkerInstance | undefined;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private expectedKeys: string | undefined;
  private memory: ChannelMemory | undefined;
  /** Wake-up counters of the channels this supervisor has retired (restarts). */
  private readonly retired: Record<WakeCounter, number> = { missedWakeups: 0, workerNudges: 0, stalledParks: 0 };

  /** A wake-up counter over every channel this replica has had: the retired ones and the live one. */
  wakeCount(name: WakeCounter): number {
    return this.retired[name] + (this.replica.channel?.[name] ?? 0);
  }

  constructor(
    readonly replica: Replica,
    private readonly entry: ResolvedWorkerEntry,
    private readonly index: number,
    private readonly ctx: SupervisorContext,
  ) {}

  /** First start: failures propagate to Controller.start. */
  async start(): Promise<readonly AdvertisedCapability[]> {
    return this.launch();
  }

  private async launch(): Promise<readonly AdvertisedCapability[]> {
    const layout = computeLayout(this.ctx.channelConfig);
    const device = this.ctx.device === null ? undefined : await this.ctx.device.openSession(this.entry);
    const memory = this.ctx.strategy.allocateChannel(layout.totalBytes);
    let instance: WorkerInstance;
    try {
      instance = await this.ctx.strategy.start({
        module: this.entry.module,
        replica: this.index,
        label: this.replica.label,
        channel: memory,
        channelConfig: this.ctx.channelConfig,
        arena: this.ctx.arena,
        logLevel: this.ctx.logLevel,
        log: this.ctx.log,
        startTimeoutMs: this.entry.startTimeoutMs,
        ...(this.entry.config === undefined ? {} : { config: this.entry.config }),
        ...(device === undefined
          ? {}
          : {
              device: device.boot,
              deviceRequests: deviceRequestHandler(this.ctx.device!.device, device.session),
              deviceInfo: { hostVisible: this.ctx.device!.device.hostVisible, name: this.ctx.device!.device.description.name },
            }),
      });
    } catch (err) {
      memory.close();
      if (device !== undefined) this.ctx.device!.closeSession(device.session);
      throw err;
    }
    this.memory?.close();
    this.memory = memory;
    const keys = instance.capabilities.map((c) => c.key).join(',');
    if (this.expectedKeys !== undefined && keys !== this.expectedKeys) {
      await instance.terminate();
      if (device !== undefined) this.ctx.device!.closeSession(device.session);
      throw new CaphostError(ErrorCode.WORKER_START_FAILED, `worker ${this.replica.label} came back with capabilities [${keys}] instead of [${this.expectedKeys}]; restart the controller to change a module's capabilities`);
    }
    this.expectedKeys = keys;
    if (this.state === 'stopped') {
      await instance.terminate();
      if (device !== undefined) this.ctx.device!.closeSession(device.session);
      return instance.capabilities;
    }
    this.replica.deviceSession = device?.session ?? null;
    this.instance = instance;
    // A malformed completion is treated as a crash of this worker: it is ended and restarted.
    const onCorrupt = (reason: string): void => this.recycle(`it sent a malformed completion (${reason})`);
    const channel = new ControllerChannel(memory.buffer, layout, this.ctx.scheduler.sinkFor(this.replica), memory.wake, onCorrupt);
    this.replica.attach(channel, new Map(instance.capabilities.map((c, i) => [c.key, i])));
    // Only the current instance's exit is a crash: one ended by recycle() is reported there.
    instance.onExit((error) => {
      if (this.instance === instance) this.crashed(error);
    });
    this.state = 'running';
    this.ctx.scheduler.replicaUp();
    return instance.capabilities;
  }

  private crashed(error: CaphostError): void {
    if (this.state === 'stopped') return;
    this.instance = undefined;
    this.ctx.log.error(error.message, { worker: this.replica.label });
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < this.ctx.restart.windowMs);
    this.crashes.push(now);
    if (this.crashes.length > this.ctx.restart.maxCrashes) {
      this.state = 'failed';
      this.replica.failed = true;
      this.ctx.log.error(`worker ${this.replica.label} crashed ${this.crashes.length} times within ${this.ctx.restart.windowMs} ms; giving up on it`, { worker: this.replica.label });
    } else this.state = 'restarting';
    for (const name of WAKE_COUNTERS) this.retired[name] = this.wakeCount(name);
    this.ctx.scheduler.replicaDown(this.replica, error);
    this.endDeviceSession();
    if (this.state === 'restarting') this.scheduleRestart();
  }

  private scheduleRestart(): void {
    // One restart at a time: a second launch would attach a second channel over the first and
    // drop the calls the first still held.
    if (this.restartTimer !== undefined) return;
    const { initialDelayMs, maxDelayMs } = this.ctx.restart;
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, this.crashes.length - 1));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.state !== 'restarting') return;
      this.restarts++;
      this.launch().then(
        () => this.ctx.log.info(`worker ${this.replica.label} restarted`, { restarts: this.restarts }),
        (err: CaphostError) => this.crashed(err),
      );
    }, delay);
  }

  /** Ends a worker that will not let go of a call (it ignored its aborted signal); it restarts like after a crash. */
  recycle(reason: string): void {
    const instance = this.instance;
    if (instance === undefined || this.state !== 'running') return;
    // Several calls can ask for the same recycle (each aborted call's grace timer): only the
    // first ends the instance, and its crash is reported once.
    this.instance = undefined;
    this.ctx.log.warn(`recycling worker ${this.replica.label}: ${reason}`);
    void instance.terminate().then(() =>
      this.crashed(new CaphostError(ErrorCode.WORKER_CRASHED, `worker ${this.replica.label} was recycled: ${reason}`)),
    );
  }

  /** Asks the worker to finish (teardown runs), waiting up to graceMs before forcing it. */
  async stop(graceMs: number): Promise<void> {
    this.state = 'stopped';
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    const instance = this.instance;
    this.instance = undefined;
    this.replica.channel?.shutdown();
    if (instance !== undefined) await instance.stop(graceMs);
    this.endDeviceSession();
    this.memory?.close();
  }

  /** The worker is gone: its grants end and the buffers it still owned are freed. */
  private endDeviceSession(): void {
    const session = this.replica.deviceSession;
    this.replica.deviceSession = null;
    if (session !== null) this.ctx.device?.closeSession(session);
  }
}
