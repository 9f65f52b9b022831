import { Worker, type ResourceLimits } from 'node:worker_threads';
import { CaphostError, ErrorCode, isErrorCode } from '../errors.js';
import type { AdvertisedCapability, WorkerBootData, WorkerToController } from './control-messages.js';
import type { ChannelMemory, ExecutionStrategy, WorkerInstance, WorkerLaunch } from './execution-strategy.js';
import { atomicsWake } from '../scheduler/wake.js';

const entry = new URL('./thread-entry.js', import.meta.url);

function describeExit(label: string, err: Error | undefined, code: number | undefined, limits: ResourceLimits | undefined): string {
  if (err !== undefined) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return `worker ${label} ran out of memory (resourceLimits ${JSON.stringify(limits ?? {})}); raise its resourceLimits or lower its memory use`;
    }
    return `worker ${label} threw an uncaught exception: ${err.message}`;
  }
  return `worker ${label} exited with code ${code}`;
}

/** Runs a worker module in a worker_thread: V8 isolation for trusted code, in the controller's process. */
export class ThreadStrategy implements ExecutionStrategy {
  readonly name = 'thread';
  readonly sharesArena = true;

  constructor(private readonly resourceLimits: ResourceLimits | undefined) {}

  allocateChannel(byteLength: number): ChannelMemory {
    return { buffer: new SharedArrayBuffer(byteLength), wake: atomicsWake, close() {} };
  }

  async start(launch: WorkerLaunch): Promise<WorkerInstance> {
    const channel = launch.channel.buffer;
    if (!(channel instanceof SharedArrayBuffer)) throw new TypeError('a thread worker needs its channel in a SharedArrayBuffer');
    const boot: WorkerBootData = {
      module: launch.module.href,
      replica: launch.replica,
      channel,
      channelConfig: launch.channelConfig,
      arena: launch.arena,
      logLevel: launch.logLevel,
      ...(launch.device === undefined ? {} : { device: launch.device }),
      ...(launch.config === undefined ? {} : { config: launch.config }),
    };
    const worker = new Worker(entry, { workerData: boot, resourceLimits: this.resourceLimits, name: `caphost ${launch.label}` });
    const log = launch.log;
    let stopped = false;
    let exited = false;
    let exitListener: ((error: CaphostError) => void) | undefined;
    let lastError: Error | undefined;
    const exitedPromise = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

    const capabilities = await new Promise<readonly AdvertisedCapability[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new CaphostError(ErrorCode.WORKER_START_FAILED, `worker ${launch.label} did not finish setup within ${launch.startTimeoutMs} ms; raise startTimeoutMs or make setup faster`));
        void worker.terminate();
      }, launch.startTimeoutMs);
      const fail = (error: CaphostError): void => {
        clearTimeout(timer);
        reject(error);
      };
      worker.on('message', (message: WorkerToController) => {
        switch (message.type) {
          case 'ready':
            clearTimeout(timer);
            resolve(message.capabilities);
            break;
          case 'failed': {
            const code = isErrorCode(message.error.code) ? message.error.code : ErrorCode.WORKER_START_FAILED;
            fail(new CaphostError(code, message.error.message, { details: { worker: launch.label } }));
            void worker.terminate();
            break;
          }
          case 'log':
            log[message.level](`[${launch.label}] ${message.message}`, message.fields);
            break;
          case 'stopped':
            stopped = true;
            break;
          default: {
            const unknown: never = message;
            log.error(`worker ${launch.label} sent an unknown control message`, { message: unknown });
          }
        }
      });
      worker.on('error', (err) => {
        lastError = err;
      });
      worker.once('exit', (code) => {
        exited = true;
        const error = new CaphostError(ErrorCode.WORKER_CRASHED, describeExit(launch.label, lastError, code, this.resourceLimits), {
          cause: lastError,
          details: { worker: launch.label, exitCode: code },
        });
        // Before 'ready' this fails the start; after it, the promise is settled and this does nothing.
        fail(new CaphostError(ErrorCode.WORKER_START_FAILED, `worker ${launch.label} stopped during start: ${error.message}`, { cause: lastError }));
        if (!stopped) exitListener?.(error);
      });
    });

    return {
      capabilities,
      onExit(listener) {
        exitListener = listener;
      },
      async stop(graceMs) {
        stopped = true;
        if (exited) return;
        const timer = setTimeout(() => void worker.terminate(), graceMs);
        await exitedPromise;
        clearTimeout(timer);
      },
      async terminate() {
        stopped = true;
        if (!exited) await worker.terminate();
        await exitedPromise;
      },
    };
  }
}
