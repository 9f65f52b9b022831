import { CaphostError, ErrorCode } from '../errors.js';
import type { ExecutionStrategy } from '../isolation/execution-strategy.js';
import { createStrategy } from '../isolation/create-strategy.js';
import { type CapabilityDescriptor, CapabilityRegistry, type RouteGroup } from '../router/capability-registry.js';
import { parseCapabilityId } from '../router/capability-ref.js';
import { type MessageCodec, compileSchema } from '../router/capability-schema.js';
import type { CallObserver } from '../scheduler/call-observer.js';
import { PendingCall } from '../scheduler/pending-call.js';
import { payloadFits } from '../scheduler/ring-layout.js';
import { Replica } from '../scheduler/replica.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { SharedArena } from '../scheduler/shared-arena.js';
import { type ControllerOptions, type ResolvedOptions, resolveOptions } from './controller-options.js';
import { ReplicaSupervisor } from './replica-supervisor.js';
import { DeviceOwner, type DeviceStats } from './device-owner.js';
import type { Device } from '../device/device.js';
import type { DeviceTensor } from '../device/device-tensor.js';
import { type MeshHost, MeshNode, type MeshStats } from '../mesh/mesh-node.js';
import type { AdvertisedCapability } from '../mesh/mesh-wire.js';

export interface CallOptions {
  /** Milliseconds from now after which the call fails with DEADLINE_EXCEEDED (queued or running). */
  readonly deadlineMs?: number;
  /** Aborting it fails the call with CANCELLED and aborts the handler's ctx.signal. */
  readonly signal?: AbortSignal;
  /** Higher runs first among queued calls of the same capability. Default 0. */
  readonly priority?: number;
}

export interface CloseOptions {
  /** How long in-flight and queued calls may take to finish before they are rejected. Default 5 000 ms. */
  readonly graceMs?: number;
}

export interface WorkerStats {
  readonly worker: string;
  readonly state: string;
  readonly inFlight: number;
  readonly inFlightLimit: number;
  readonly restarts: number;
  readonly averageBusyUs: number;
  /** Worker notifications that never reached the controller and were caught by its periodic check. */
  readonly missedWakeups: number;
  /** Wake-ups the controller re-sent a worker that held requests without moving on for 10-20 ms (a lost wake-up, or a long handler). */
  readonly workerNudges: number;
  /** Controller parks whose wait had not come back after 10-20 ms (2 ms timeout), ended by the channel's watch. */
  readonly stalledParks: number;
  /** The capabilities (`name@major.minor`) this worker provides; empty until its first start finished. */
  readonly capabilities: readonly string[];
}

/** The message types of a capability as the controller resolved it (for servers that translate other protocols). */
export interface CapabilityTypes {
  /** The provided version the request resolves to, `name@major.minor`. */
  readonly key: string;
  readonly input: MessageCodec['type'];
  readonly output: MessageCodec['type'];
}

export interface ControllerStats {
  readonly workers: readonly WorkerStats[];
  readonly capabilities: ReturnType<Scheduler['stats']>['capabilities'];
  readonly queued: number;
  readonly arena: { readonly bytes: number; readonly inUse: number };
  /** The backend in use, why it was chosen, and the device buffers alive. */
  readonly device: DeviceStats;
  /** Present when the controller joined a mesh. */
  readonly mesh?: MeshStats;
}

function rejectWith(error: unknown): Promise<never> {
  return Promise.reject(error);
}

/**
 * The single point of trust on a node: it starts and supervises workers, owns shared memory and
 * the routing table, and settles every call exactly once.
 */
export class Controller {
  readonly #options: ResolvedOptions;
  readonly #registry = new CapabilityRegistry();
  readonly #scheduler: Scheduler;
  readonly #supervisors: ReplicaSupervisor[] = [];
  readonly #arena: SharedArena | null;
  readonly #device: DeviceOwner;
  #closing: Promise<void> | undefined;
  readonly #observers: CallObserver[] = [];
  #mesh: MeshNode | undefined;
  /** Schema sources of the local capabilities, which the mesh advertises. */
  readonly #sources = new Map<string, AdvertisedCapability>();

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#arena = options.arenaBytes > 0 ? new SharedArena(options.arenaBytes) : null;
    this.#device = DeviceOwner.open(options.device, options.logger);
    this.#scheduler = new Scheduler({
      tensors: this.#device,
      maxQueue: options.maxQueue,
      abortGraceMs: options.abortGraceMs,
      arena: this.#arena?.buffer ?? null,
      recycle: (replica, reason) => this.#supervisors.find((s) => s.replica === replica)?.recycle(reason),
    });
  }

  /** Starts every worker and resolves once each has finished setup and reported its capabilities. */
  static async start(options: ControllerOptions): Promise<Controller> {
    const controller = new Controller(resolveOptions(options));
    try {
      await controller.#startWorkers();
      if (controller.#options.mesh !== undefined) controller.#mesh = await MeshNode.start(controller.#options.mesh, controller.#meshHost());
    } catch (err) {
      await controller.close({ graceMs: 0 });
      throw err;
    }
    return controller;
  }

  async #startWorkers(): Promise<void> {
    const options = this.#options;
    let provider = 0;
    const starts: Promise<void>[] = [];
    options.workers.forEach((entry, entryIndex) => {
      const strategy: ExecutionStrategy = createStrategy(entry);
      const moduleName = entry.module.pathname.split('/').pop() ?? entry.module.href;
      for (let r = 0; r < entry.replicas; r++) {
        const replica = new Replica(provider++, `${moduleName}#${entryIndex}.${r}`, entry.maxInFlight, options.ringBudgetUs * 1000);
        this.#scheduler.addReplica(replica);
        const supervisor = new ReplicaSupervisor(replica, entry, r, {
          strategy,
          scheduler: this.#scheduler,
          channelConfig: options.channel,
          arena: this.#arena?.buffer ?? null,
          log: options.logger,
          logLevel: options.logLevel,
          restart: options.restart,
          device: this.#device,
        });
        this.#supervisors.push(supervisor);
        starts.push(
          supervisor.start().then((advertised) => {
            const capabilities = advertised.map((cap) => ({ id: parseCapabilityId(cap.key), schema: compileSchema(cap.key, cap), batch: cap.batch }));
            this.#registry.add(replica.provider, false, strategy.sharesArena, capabilities);
            for (const cap of advertised) this.#sources.set(cap.key, { key: cap.key, proto: cap.proto, input: cap.input, output: cap.output });
          }),
        );
      }
    });
    const results = await Promise.allSettled(starts);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    options.logger.info(`controller started ${this.#supervisors.length} worker(s)`, { capabilities: this.#registry.describe().map((c) => c.capability) });
  }

  /** Shared memory for zero-copy buffers: a view of it in a bytes field crosses a call by reference. */
  get arena(): SharedArena {
    if (this.#arena === null) throw new CaphostError(ErrorCode.INVALID_ARGUMENT, 'this controller was started with arenaBytes: 0, so it has no shared arena');
    return this.#arena;
  }

  /** The controller's device: buffers it owns, weights, command lists (see src/device/device.ts). */
  get device(): Device {
    return this.#device.device;
  }

  /**
   * Calls a capability (`name@major` or `name@major.minor`) and resolves with its decoded output.
   * Always returns a promise; every failure is a CaphostError with a stable code.
   */
  call<O = Record<string, unknown>>(capability: string, input: object, options?: CallOptions): Promise<O> {
    if (this.#closing !== undefined) {
      return rejectWith(new CaphostError(ErrorCode.CONTROLLER_CLOSED, `the controller is closed; "${capability}" was not called`));
    }
    let group;
    let encoded;
    let tensors: DeviceTensor[] | null = null;
    try {
      group = this.#registry.group(capability);
      const codec = group.candidates[0]!.schema.input;
      const checked = codec.check(input);
      tensors = codec.hasTensors ? codec.deviceTensorsOf(input as Record<string, unknown>) : null;
      encoded = codec.encode(checked, group.sharesArena ? (this.#arena?.buffer ?? null) : null, true);
    } catch (err) {
      return rejectWith(err);
    }
    let deadline = 0;
    let priority = 0;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      const problem = checkCallOptions(options);
      if (problem !== undefined) return rejectWith(problem);
      if (options.deadlineMs !== undefined) deadline = Date.now() + options.deadlineMs;
      priority = options.priority ?? 0;
      signal = options.signal;
      if (signal?.aborted) {
        return rejectWith(new CaphostError(ErrorCode.CANCELLED, `the signal for this "${capability}" call was already aborted`, { cause: signal.reason }));
      }
    }
    if (!payloadFits(this.#options.channel, encoded.bytes.len, encoded.refs?.length ?? 0)) {
      return rejectWith(
        new CaphostError(
          ErrorCode.PAYLOAD_TOO_LARGE,
          `the input of this "${capability}" call encodes to ${encoded.bytes.len} bytes, more than transport.overflowBytes (${this.#options.channel.overflowBytes}); pass large buffers as views of controller.arena, or raise transport.overflowBytes`,
          { details: { capability, bytes: encoded.bytes.len } },
        ),
      );
    }
    if (this.#mesh !== undefined && group.candidates[group.candidates.length - 1]!.remote && (tensors === null || tensors.length === 0)) {
      // Remote candidates come last in static order; the mesh picks among all and retries. Device
      // tensors name this node's buffers, so calls that carry them stay here.
      const deadlineMs = options?.deadlineMs ?? 0;
      const refs = encoded.refs;
      return this.#mesh.route(capability, group, encoded.bytes, deadline, deadlineMs, signal, (payload) =>
        new Promise((resolve, reject) => this.#scheduler.submit(new PendingCall(this.#registry.localGroup(capability), payload, refs, priority, this.#scheduler.nextSeq(), deadline, deadlineMs, signal, resolve, reject))),
      ) as Promise<O>;
    }
    return new Promise<O>((resolve, reject) => {
      const call = new PendingCall(group, encoded.bytes, encoded.refs, priority, this.#scheduler.nextSeq(), deadline, options?.deadlineMs ?? 0, signal, resolve as (v: unknown) => void, reject);
      if (tensors !== null && tensors.length > 0) call.tensors = tensors;
      this.#scheduler.submit(call);
    });
  }

  /** What the mesh sees of this controller. */
  #meshHost(): MeshHost {
    return {
      log: this.#options.logger,
      capabilities: () => [...this.#sources.values()],
      load: () => this.#scheduler.queuedCalls + this.#supervisors.reduce((n, s) => n + (s.replica.channel?.inFlight ?? 0), 0),
      localLoad: (provider) => this.#supervisors[provider]?.replica.load() ?? Infinity,
      serve: (capability, input, deadlineMs, resolve, reject) => this.#serve(capability, input, deadlineMs, resolve, reject),
      addPeer: (provider, capabilities) =>
        this.#registry.add(provider, true, false, capabilities.map((c) => ({ id: parseCapabilityId(c.key), schema: compileSchema(c.key, c) }))),
      removePeer: (provider) => this.#registry.remove(provider),
      group: (text) => this.#registry.group(text),
    };
  }

  /**
   * A call from another node: local workers only, input already encoded, output handed back
   * encoded (the worker's bytes, not decoded here). Settles through resolve or reject exactly
   * once, possibly before it returns; returns what cancels it (nothing once settled).
   */
  #serve(capability: string, input: Uint8Array, deadlineMs: number, resolve: (output: Uint8Array) => void, reject: (error: unknown) => void): (() => void) | undefined {
    let group: RouteGroup;
    try {
      group = this.#registry.localGroup(capability);
    } catch (err) {
      reject(err);
      return undefined;
    }
    if (!payloadFits(this.#options.channel, input.length, 0)) {
      reject(new CaphostError(ErrorCode.PAYLOAD_TOO_LARGE, `the input of this "${capability}" call is ${input.length} bytes, more than transport.overflowBytes (${this.#options.channel.overflowBytes}) of the serving node`, { details: { capability, bytes: input.length } }));
      return undefined;
    }
    const deadline = deadlineMs > 0 ? Date.now() + deadlineMs : 0;
    const call = new PendingCall(group, input, null, 0, this.#scheduler.nextSeq(), deadline, deadlineMs, undefined, resolve as (value: unknown) => void, reject);
    call.outputBytes = true;
    call.fromPeer = true;
    this.#scheduler.submit(call);
    return call.settled ? undefined : () => this.#scheduler.cancel(call);
  }

  /** What this controller serves: each capability with its version, providers and message types. */
  capabilities(): CapabilityDescriptor[] {
    return this.#registry.describe();
  }

  /** The message types a call to `capability` is checked against; throws CAPABILITY_NOT_FOUND like call(). */
  messageTypes(capability: string): CapabilityTypes {
    const route = this.#registry.group(capability).candidates[0]!;
    return { key: route.key, input: route.schema.input.type, output: route.schema.output.type };
  }

  /**
   * Watches every call from now on (for metrics): each settlement with its queue and compute
   * time, and each dispatch to a worker. Returns a function that stops watching.
   */
  observe(observer: CallObserver): () => void {
    this.#observers.push(observer);
    this.#updateObserver();
    return () => {
      const at = this.#observers.indexOf(observer);
      if (at >= 0) this.#observers.splice(at, 1);
      this.#updateObserver();
    };
  }

  #updateObserver(): void {
    const list = this.#observers;
    this.#scheduler.observer =
      list.length === 0
        ? null
        : list.length === 1
          ? list[0]!
          : {
              settled: (...args) => list.forEach((o) => o.settled(...args)),
              dispatched: (capability, size) => list.forEach((o) => o.dispatched(capability, size)),
            };
  }

  stats(): ControllerStats {
    const scheduler = this.#scheduler.stats();
    return {
      workers: this.#supervisors.map((s) => ({
        worker: s.replica.label,
        state: s.state,
        inFlight: s.replica.channel?.inFlight ?? 0,
        inFlightLimit: s.replica.inFlightLimit,
        restarts: s.restarts,
        averageBusyUs: s.replica.averageBusyNs / 1000,
        missedWakeups: s.wakeCount('missedWakeups'),
        workerNudges: s.wakeCount('workerNudges'),
        stalledParks: s.wakeCount('stalledParks'),
        capabilities: [...s.replica.capabilityIndex.keys()],
      })),
      capabilities: scheduler.capabilities,
      queued: scheduler.queued,
      arena: { bytes: this.#arena?.byteLength ?? 0, inUse: this.#arena?.bytesInUse ?? 0 },
      device: this.#device.stats(),
      ...(this.#mesh === undefined ? {} : { mesh: this.#mesh.stats() }),
    };
  }

  /**
   * Stops taking calls, lets queued and in-flight calls finish for up to graceMs, rejects the rest
   * with CONTROLLER_CLOSED, runs each worker's teardown and ends the workers. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.graceMs ?? 5_000);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const until = Date.now() + graceMs;
    // The mesh first: calls it serves still need the local workers.
    await this.#mesh?.close(graceMs);
    while (Date.now() < until && this.#busy()) await new Promise((r) => setTimeout(r, 2));
    const closed = () => new CaphostError(ErrorCode.CONTROLLER_CLOSED, 'the controller closed before this call finished');
    this.#scheduler.rejectQueued(closed);
    for (const supervisor of this.#supervisors) supervisor.replica.channel?.shutdown();
    for (const supervisor of this.#supervisors) this.#scheduler.replicaDown(supervisor.replica, closed(), ErrorCode.CONTROLLER_CLOSED);
    await Promise.all(this.#supervisors.map((s) => s.stop(Math.max(1000, graceMs))));
    this.#scheduler.close();
    await this.#device.close();
  }

  #busy(): boolean {
    return this.#scheduler.queuedCalls > 0 || this.#supervisors.some((s) => (s.replica.channel?.inFlight ?? 0) > 0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function checkCallOptions(options: CallOptions): CaphostError | undefined {
  const bad = (name: string, expected: string, value: unknown) =>
    new CaphostError(ErrorCode.INVALID_ARGUMENT, `call options.${name} must be ${expected}, got ${String(value)}`, { details: { option: name } });
  if (options.deadlineMs !== undefined && !(typeof options.deadlineMs === 'number' && options.deadlineMs > 0 && Number.isFinite(options.deadlineMs))) {
    return bad('deadlineMs', 'a positive finite number of milliseconds', options.deadlineMs);
  }
  if (options.priority !== undefined && !(typeof options.priority === 'number' && Number.isFinite(options.priority))) {
    return bad('priority', 'a finite number (higher runs first)', options.priority);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) return bad('signal', 'an AbortSignal', options.signal);
  return undefined;
}
