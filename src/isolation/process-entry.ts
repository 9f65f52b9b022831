/**
 * The first code that runs in a process worker (a child of the controller, spawned by
 * process-strategy.ts). fd 3 (CONTROL_FD) is a pipe to the controller for control messages,
 * one JSON line each; fd 4 (CHANNEL_FD) is the channel memory; argv[2] is the boot data (JSON).
 *
 * Order matters: every module this runtime needs is imported statically, so it is loaded
 * before the sandbox goes on; then the channel is mapped and its fd closed, then the sandbox
 * is applied (Landlock, then seccomp), and only then is the user's module imported. If any
 * sandbox step fails the child reports 'failed' and exits: it never runs user code unconfined.
 */
import { writeSync } from 'node:fs';
import { CaphostError, ErrorCode } from '../errors.js';
import { levelRank, type Logger } from '../logger.js';
import { loadCoreBinding } from '../native/core-binding.js';
import { computeLayout } from '../scheduler/ring-layout.js';
import type { SetupContext } from '../worker/define-worker.js';
import { loadWorkerModule, type LoadedWorker } from '../worker/load-worker-module.js';
import { WorkerLoop } from '../worker/worker-loop.js';
import { WorkerDeviceAccess } from '../worker/worker-device.js';
import { RemoteDevice } from '../worker/remote-device.js';
import { DEVICE_FD, type DeviceReply, type DeviceRequest } from './device-messages.js';
// What a worker module imports (caphost/worker): loaded now, so it resolves from the cache later.
import '../worker/index.js';
import { CHANNEL_FD, CONTROL_FD, type ProcessBootData, type WorkerToController, advertise } from './control-messages.js';
import { futexWake, watchedWake } from './futex-wake.js';
import { applySandbox, type SandboxReport } from './sandbox/apply-sandbox.js';

/** Exit codes the controller can tell apart (besides signals and the handler's own exits). */
const EXIT_NO_CONTROLLER = 64;
const EXIT_START_FAILED = 70;
const EXIT_ORPHANED = 71;
/** How often a parked worker looks up whether its controller still lives. */
const PARENT_CHECK_MS = 1000;

/**
 * Writes one control message, synchronously: it goes out even while the worker loop holds the
 * event loop (a sync handler's log line), and a 'failed' is out before the process exits.
 */
function send(message: WorkerToController | DeviceRequest): void {
  let line: string;
  try {
    line = `${JSON.stringify(message)}\n`;
  } catch {
    // Log fields that do not serialise (cycles, BigInt) are dropped, not the message.
    line = `${JSON.stringify({ ...message, fields: undefined })}\n`;
  }
  const bytes = Buffer.from(line);
  for (let at = 0; at < bytes.length; ) {
    try {
      at += writeSync(CONTROL_FD, bytes, at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      process.exit(EXIT_ORPHANED); // EPIPE: the controller is gone
    }
  }
}

/** One device request: up the control pipe, then wait for the reply on the device socket. */
function askController(request: DeviceRequest): { reply: DeviceReply; fd: number } {
  send(request);
  const { bytes, fd } = loadCoreBinding().recvMessage(DEVICE_FD);
  return { reply: JSON.parse(bytes.toString('utf8')) as DeviceReply, fd };
}

/** Maps a granted buffer's descriptor (read-only for a read grant) and lets the descriptor go. */
function mapGranted(fd: number, bytes: number, readOnly: boolean): ArrayBuffer {
  const core = loadCoreBinding();
  try {
    return core.mapSharedMemory(fd, bytes, readOnly);
  } finally {
    core.closeFd(fd);
  }
}

function controlLogger(min: number): Logger {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
    if (levelRank[level] >= min) send(fields === undefined ? { type: 'log', level, message } : { type: 'log', level, message, fields });
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function fail(err: unknown, fallback: string): never {
  const error = err instanceof CaphostError ? err.toJSON() : { code: ErrorCode.WORKER_START_FAILED, message: `${fallback}: ${err instanceof Error ? err.message : String(err)}` };
  send({ type: 'failed', error });
  // No user code was loaded, and none will be.
  process.exit(EXIT_START_FAILED);
}

async function main(): Promise<void> {
  if (process.argv[2] === undefined) {
    process.stderr.write('caphost process-entry: run by the caphost controller only\n');
    process.exit(EXIT_NO_CONTROLLER);
  }
  const boot = JSON.parse(process.argv[2]) as ProcessBootData;
  const parent = process.ppid;
  const log = controlLogger(levelRank[boot.logLevel]);
  // A worker whose controller died must not live on. Parked in a blocking futex wait its event
  // loop is stopped, so the wake checks after each bounded wait; this timer covers the rest.
  const checkParent = (): void => {
    if (process.ppid !== parent) process.exit(EXIT_ORPHANED);
  };
  setInterval(checkParent, PARENT_CHECK_MS).unref();
  process.on('uncaughtException', (err) => {
    process.stderr.write(`caphost-worker: uncaught exception: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });

  let buffer: ArrayBuffer;
  let report: SandboxReport;
  try {
    const core = loadCoreBinding();
    const layout = computeLayout(boot.channelConfig);
    if (layout.totalBytes > boot.channelBytes) throw new Error(`the channel has ${boot.channelBytes} bytes, its layout needs ${layout.totalBytes}`);
    buffer = core.mapSharedMemory(CHANNEL_FD, boot.channelBytes);
    // The mapping outlives the fd; closing it leaves user code nothing to remap or resize.
    core.closeFd(CHANNEL_FD);
    report = applySandbox(boot.sandbox, core);
  } catch (err) {
    fail(err, `the sandbox of worker ${boot.label} could not be set up`);
  }

  const deviceBoot = boot.device;
  const resources =
    deviceBoot === undefined
      ? new WorkerDeviceAccess(undefined, [], 'this controller gave its workers no device')
      : new WorkerDeviceAccess(() => new RemoteDevice(deviceBoot, askController, (fd, bytes, readOnly) => mapGranted(fd, bytes, readOnly)), deviceBoot.weights, '');
  const setupContext: SetupContext = resources.setupContext(log, boot.replica, boot.config);
  let loaded: LoadedWorker;
  try {
    loaded = await loadWorkerModule(new URL(boot.module));
    await loaded.definition.setup?.(setupContext);
  } catch (err) {
    fail(err, `setup() of worker module ${boot.module} threw`);
  }
  const { definition } = loaded;
  send({
    type: 'ready',
    capabilities: loaded.capabilities.map(advertise),
    sandbox: report,
  });

  const wake = watchedWake(futexWake, PARENT_CHECK_MS, checkParent);
  const onStop = (): void => {
    void (async () => {
      try {
        await definition.teardown?.(setupContext);
      } catch (err) {
        log.error(`teardown threw: ${(err as Error).message}`);
      }
      // Exit even if the module left handles open: the controller asked this worker to go.
      send({ type: 'stopped' });
      process.exit(0);
    })();
  };
  const loop = new WorkerLoop(buffer, computeLayout(boot.channelConfig), null, loaded.capabilities, log, onStop, wake);
  loop.resources = resources;
  loop.start();
}

main().catch((err: unknown) => {
  process.stderr.write(`caphost-worker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT_START_FAILED);
});
