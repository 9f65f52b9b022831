/**
 * The first code that runs in a thread worker. It imports only the worker runtime, never
 * controller code, loads the user's module, reports its capabilities and enters the ring loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { levelRank, type Logger } from '../logger.js';
import { computeLayout } from '../scheduler/ring-layout.js';
import { loadWorkerModule } from '../worker/load-worker-module.js';
import { WorkerLoop } from '../worker/worker-loop.js';
import { WorkerDeviceAccess } from '../worker/worker-device.js';
import { CaphostError, ErrorCode } from '../errors.js';
import type { SetupContext } from '../worker/define-worker.js';
import { type WorkerBootData, type WorkerToController, advertise } from './control-messages.js';

const port = parentPort!;
const boot = workerData as WorkerBootData;
const post = (message: WorkerToController): void => port.postMessage(message);

function portLogger(): Logger {
  const min = levelRank[boot.logLevel];
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) => {
    if (levelRank[level] >= min) post(fields === undefined ? { type: 'log', level, message } : { type: 'log', level, message, fields });
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function main(): Promise<void> {
  const log = portLogger();
  const resources = WorkerDeviceAccess.forThread(boot.device, 'this controller gave its workers no device session');
  const setupContext: SetupContext = resources.setupContext(log, boot.replica, boot.config);
  let loaded;
  try {
    loaded = await loadWorkerModule(new URL(boot.module));
    await loaded.definition.setup?.(setupContext);
  } catch (err) {
    const error =
      err instanceof CaphostError
        ? err.toJSON()
        : { code: ErrorCode.WORKER_START_FAILED, message: `setup() of worker module ${boot.module} threw: ${err instanceof Error ? err.message : String(err)}` };
    post({ type: 'failed', error });
    return;
  }
  const { definition } = loaded;
  post({
    type: 'ready',
    capabilities: loaded.capabilities.map(advertise),
  });
  const loop = new WorkerLoop(boot.channel, computeLayout(boot.channelConfig), boot.arena, loaded.capabilities, log, () => {
    void (async () => {
      try {
        await definition.teardown?.(setupContext);
      } catch (err) {
        log.error(`teardown threw: ${(err as Error).message}`);
      }
      post({ type: 'stopped' });
      port.close();
    })();
  });
  loop.resources = resources;
  loop.start();
}

void main();
