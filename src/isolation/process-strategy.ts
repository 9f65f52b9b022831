/**
 * Runs a worker module in a sandboxed child process: caphost's security boundary.
 *
 * The channel is a memfd (Linux) or unlinked shm object (macOS) that the controller creates and
 * maps; the child inherits it as fd 4 and maps the same pages. The call path is the ring
 * protocol over that memory, woken through the futex syscall (futex-wake.ts). Control
 * messages (ready, failed, log, stopped) are JSON lines on a pipe at the child's fd 3, never
 * on the call path. Not Node's 'ipc' channel: that one buffers a message of any size before
 * anyone can look at it and lets the sender pass handles (fds) into the controller, and the
 * sender here is untrusted.
 * Each start gets a fresh scratch folder (mkdtemp under os.tmpdir()), the only place the worker
 * may write, removed when the child ends. Arena views cannot cross (sharesArena is false): the
 * child does not map the controller's SharedArrayBuffer, so they travel as bytes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type { ResourceLimits } from 'node:worker_threads';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';
import { loadCoreBinding } from '../native/core-binding.js';
import { DEVICE_FD, isDeviceRequestShape, parseDeviceRequest } from './device-messages.js';
import { CHANNEL_FD, CONTROL_FD, parseChildMessage, type AdvertisedCapability, type ProcessBootData } from './control-messages.js';
import type { ChannelMemory, ExecutionStrategy, WorkerInstance, WorkerLaunch } from './execution-strategy.js';
import { futexWake } from './futex-wake.js';
import { SIGUSR1_DISABLED, childEnv, childNodeFlags, describeExit, forwardOutput, outputLog, splitLines } from './process-child.js';
import { PACKAGE_ROOT, planSandbox, resolverPaths } from './sandbox/sandbox-plan.js';
import type { SandboxProfile } from './sandbox/sandbox-profile.js';
import { SANDBOX_EXEC, detectSandboxSupport, requireSandbox, sandboxGaps, type SandboxSupport } from './sandbox/sandbox-support.js';
import { compileSbplProfile } from './sandbox/sbpl-profile.js';

const ENTRY = fileURLToPath(new URL('./process-entry.js', import.meta.url));
/** After the grace period a child gets SIGTERM, and this much later SIGKILL. */
const KILL_AFTER_TERM_MS = 200;
/** How long crash handling waits for the child's last stderr lines after it exited. */
const OUTPUT_SETTLE_MS = 100;
/** The longest control message a child may send (a 'ready' carries its .proto texts). */
const MAX_CONTROL_LINE = 16 << 20;

export interface ProcessStrategyOptions {
  readonly profile: SandboxProfile;
  readonly resourceLimits?: ResourceLimits | undefined;
  /** Detection result; probed at construction when absent (tests inject a lesser one). */
  readonly support?: SandboxSupport;
}

export class ProcessStrategy implements ExecutionStrategy {
  readonly name = 'process';
  readonly sharesArena = false;
  readonly #profile: SandboxProfile;
  readonly #limits: ResourceLimits | undefined;
  readonly #support: SandboxSupport;
  /** The fd behind each channel buffer, until the child has its own copy. */
  readonly #fds = new WeakMap<ArrayBuffer, { fd: number; open: boolean }>();

  constructor(options: ProcessStrategyOptions) {
    this.#profile = options.profile;
    this.#limits = options.resourceLimits;
    this.#support = requireSandbox(options.profile, `sandbox profile '${options.profile.name}'`, options.support ?? detectSandboxSupport());
  }

  allocateChannel(byteLength: number): ChannelMemory {
    const shm = loadCoreBinding().createSharedMemory(byteLength, 'caphost-channel');
    const record = { fd: shm.fd, open: true };
    this.#fds.set(shm.buffer, record);
    return { buffer: shm.buffer, wake: futexWake, close: () => closeRecord(record) };
  }

  async start(launch: WorkerLaunch): Promise<WorkerInstance> {
    const channel = launch.channel.buffer;
    const record = channel instanceof ArrayBuffer ? this.#fds.get(channel) : undefined;
    if (record === undefined || !record.open) throw new TypeError('a process worker needs channel memory from this strategy’s allocateChannel()');
    for (const gap of sandboxGaps(this.#profile, this.#support)) launch.log.warn(`${launch.label}: ${gap}`);
    const scratch = await realpath(await mkdtemp(path.join(tmpdir(), 'caphost-worker-')));
    const core = loadCoreBinding();
    // The device socket: requests go up the control pipe, replies (and buffer descriptors) come down here.
    const devicePair = launch.device !== undefined && launch.deviceRequests !== undefined ? core.socketPair() : undefined;
    let child: ChildProcess;
    try {
      child = this.#spawn(launch, scratch, channel.byteLength, record.fd, devicePair?.[1]);
    } catch (err) {
      if (devicePair !== undefined) for (const fd of devicePair) core.closeFd(fd);
      await rm(scratch, { recursive: true, force: true });
      throw err;
    }
    // The child holds its own copy of the fd now; the controller needs only the mapping.
    closeRecord(record);
    if (devicePair !== undefined) core.closeFd(devicePair[1]);
    return supervise(child, launch, scratch, this.#profile.name, this.#limits, devicePair?.[0]);
  }

  #spawn(launch: WorkerLaunch, scratch: string, channelBytes: number, fd: number, deviceFd: number | undefined): ChildProcess {
    // Resolved paths: Seatbelt matches them literally (Landlock resolves by itself).
    const nodeBinary = resolved(process.execPath);
    const moduleDir = resolved(path.dirname(fileURLToPath(launch.module)));
    const boot: ProcessBootData = {
      module: launch.module.href,
      replica: launch.replica,
      label: launch.label,
      channelBytes,
      channelConfig: launch.channelConfig,
      logLevel: launch.logLevel,
      scratchDir: scratch,
      ...(launch.config === undefined ? {} : { config: launch.config }),
      ...(deviceFd === undefined || launch.device === undefined
        ? {}
        : { device: { backend: launch.device.backend === 'cpu' ? 'cpu' : 'gpu', hostVisible: launch.deviceInfo?.hostVisible ?? false, name: launch.deviceInfo?.name ?? '', weights: launch.device.weights } }),
      sandbox: planSandbox({ profile: this.#profile, support: this.#support, scratchDir: scratch, moduleDir, nodeBinary, sigusr1Disabled: SIGUSR1_DISABLED }),
    };
    const args = [...childNodeFlags(this.#limits), ENTRY, JSON.stringify(boot)];
    const { command, argv } = launchCommand(this.#support.platform, this.#profile, { scratchDir: scratch, moduleDir, nodeBinary }, args);
    // fds in the child: 0 /dev/null, 1-2 output pipes, CONTROL_FD (3) the control pipe, CHANNEL_FD (4) the memfd.
    const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
    stdio[CONTROL_FD] = 'pipe';
    stdio[CHANNEL_FD] = fd;
    if (deviceFd !== undefined) stdio[DEVICE_FD] = deviceFd;
    return spawn(command, argv, { stdio, env: childEnv(scratch), cwd: scratch });
  }
}

/**
 * The command that starts a worker child. On macOS, sandbox-exec applies the SBPL profile to
 * itself and then execs node, so the profile is on before Node's first instruction (and the
 * child's applySandbox has nothing left to do); on Linux the child confines itself.
 */
export function launchCommand(
  platform: NodeJS.Platform,
  profile: SandboxProfile,
  paths: { readonly scratchDir: string; readonly moduleDir: string; readonly nodeBinary: string },
  nodeArgs: readonly string[],
): { command: string; argv: string[] } {
  if (platform !== 'darwin') return { command: paths.nodeBinary, argv: [...nodeArgs] };
  const sbpl = compileSbplProfile(profile, {
    ...paths,
    extraReadOnly: ['dist', 'node_modules', 'package.json'].map((p) => resolved(path.join(PACKAGE_ROOT, p))).concat(resolverPaths(paths.moduleDir).map(resolved)),
    // A Homebrew or nvm node keeps its own dylibs beside its bin folder.
    libraryDirs: [resolved(path.resolve(path.dirname(paths.nodeBinary), '../lib'))],
  });
  return { command: SANDBOX_EXEC, argv: ['-p', sbpl, paths.nodeBinary, ...nodeArgs] };
}

function resolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Answers a child's device requests in order (the child waits for each reply). A malformed
 * request, or one sent when no device was given, ends the child: it is not speaking the protocol.
 */
function serveDevice(fd: number, launch: WorkerLaunch, kill: () => void): { request(value: Record<string, unknown>): void; close(): void } {
  const core = loadCoreBinding();
  let open = true;
  let chain = Promise.resolve();
  return {
    request(value) {
      const request = parseDeviceRequest(value);
      if (request === undefined || launch.deviceRequests === undefined) {
        launch.log.error(`worker ${launch.label} sent a malformed device request; ending it`);
        kill();
        return;
      }
      chain = chain.then(async () => {
        const { reply, fd: pass } = await launch.deviceRequests!(request);
        try {
          if (open) core.sendMessage(fd, Buffer.from(JSON.stringify(reply)), pass ?? -1);
        } catch (err) {
          launch.log.warn(`worker ${launch.label}: device reply not delivered: ${(err as Error).message}`);
        } finally {
          if (pass !== undefined) core.closeFd(pass);
        }
      });
    },
    close() {
      if (!open) return;
      open = false;
      void chain.then(() => core.closeFd(fd));
    },
  };
}

function closeRecord(record: { fd: number; open: boolean }): void {
  if (!record.open) return;
  record.open = false;
  loadCoreBinding().closeFd(record.fd);
}

/** Watches one child from spawn to exit: its start, its control messages, its output and its end. */
async function supervise(child: ChildProcess, launch: WorkerLaunch, scratch: string, profile: string, limits: ResourceLimits | undefined, deviceFd: number | undefined): Promise<WorkerInstance> {
  const { log, label } = launch;
  const device = deviceFd === undefined ? undefined : serveDevice(deviceFd, launch, () => child.kill('SIGKILL'));
  if (device !== undefined) child.once('exit', () => device.close());
  let stopped = false;
  let exitListener: ((error: CaphostError) => void) | undefined;
  let startFailure: ((error: CaphostError) => void) | undefined;
  forwardOutput(child.stdout, outputLog(log, label, 'stdout'));
  const stderr = forwardOutput(child.stderr, outputLog(log, label, 'stderr'));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const removeScratch = (): Promise<void> =>
    rm(scratch, { recursive: true, force: true, maxRetries: 3 }).catch((err: Error) => log.warn(`could not remove scratch folder ${scratch}: ${err.message}`));

  // Settles once the child is gone and its scratch folder removed: stop() and terminate() wait for it.
  const finished = new Promise<CaphostError>((resolve) => {
    child.once('exit', (code, signal) => {
      void (async () => {
        // 'close' (all output read) can be held up by anything that inherited the pipes; don't wait long.
        await Promise.race([closed, new Promise((r) => setTimeout(r, OUTPUT_SETTLE_MS))]);
        await removeScratch();
        const message = describeExit({ label, code, signal, stderr: stderr.tail(), profile, limits });
        resolve(new CaphostError(ErrorCode.WORKER_CRASHED, message, { details: { worker: label, exitCode: code, signal } }));
      })();
    });
    child.on('error', (err) => {
      // A failed spawn (ENOENT, EAGAIN) has no pid and never emits 'exit'.
      if (child.pid !== undefined) return;
      void removeScratch().then(() => resolve(new CaphostError(ErrorCode.WORKER_START_FAILED, `worker ${label} could not be spawned: ${err.message}`, { cause: err })));
    });
  });
  void finished.then((error) => {
    const during = error.code === ErrorCode.WORKER_CRASHED ? `worker ${label} stopped during start: ${error.message}` : error.message;
    startFailure?.(new CaphostError(ErrorCode.WORKER_START_FAILED, during, { cause: error, details: error.details ?? {} }));
    if (!stopped) exitListener?.(error);
  });

  const capabilities = await new Promise<readonly AdvertisedCapability[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      fail(new CaphostError(ErrorCode.WORKER_START_FAILED, `worker ${label} did not finish setup within ${launch.startTimeoutMs} ms; raise startTimeoutMs or make setup faster`));
    }, launch.startTimeoutMs);
    // Start fails only once the child is reaped and its scratch removed: nothing outlives the error.
    const fail = (error: CaphostError): void => {
      startFailure = undefined;
      clearTimeout(timer);
      child.kill('SIGKILL');
      void finished.then(() => reject(error));
    };
    startFailure = fail;
    splitLines(child.stdio[CONTROL_FD] as Readable | null, MAX_CONTROL_LINE, (line, whole) => {
      let message;
      try {
        const value: unknown = whole ? JSON.parse(line) : undefined;
        if (isDeviceRequestShape(value)) {
          device?.request(value);
          return;
        }
        message = parseChildMessage(value);
      } catch {
        message = undefined;
      }
      if (message === undefined) {
        log.warn(`worker ${label} sent a malformed or oversized control message; ignored`, { bytes: line.length });
        return;
      }
      switch (message.type) {
        case 'ready':
          if (startFailure === undefined) return;
          startFailure = undefined;
          clearTimeout(timer);
          if (message.sandbox !== undefined) log.debug(`worker ${label} is sandboxed (profile '${profile}')`, { sandbox: message.sandbox });
          resolve(message.capabilities);
          break;
        case 'failed': {
          if (startFailure === undefined) return;
          const code = isErrorCode(message.error.code) ? message.error.code : ErrorCode.WORKER_START_FAILED;
          fail(new CaphostError(code, message.error.message, { details: { worker: label } }));
          break;
        }
        case 'log':
          log[message.level](`[${label}] ${message.message}`, message.fields);
          break;
        case 'stopped':
          // Informational only: a child must not be able to mute its own crash report by claiming
          // it was stopped; stop() and terminate() are what mark an exit as expected.
          log.debug(`worker ${label} finished its teardown`);
          break;
      }
    });
  });

  return {
    capabilities,
    onExit(listener) {
      exitListener = listener;
    },
    // The controller has set the channel's SHUTDOWN flag: the worker runs teardown and exits by
    // itself; one that does not gets SIGTERM after graceMs and SIGKILL (which it cannot refuse) soon after.
    async stop(graceMs) {
      stopped = true;
      const term = setTimeout(() => child.kill('SIGTERM'), graceMs);
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + KILL_AFTER_TERM_MS);
      await finished;
      clearTimeout(term);
      clearTimeout(kill);
    },
    async terminate() {
      stopped = true;
      child.kill('SIGKILL');
      await finished;
    },
  };
}
