/**
 * The end-to-end latency of a capability call whose handler runs a command list on the
 * device (a thread worker, tensors granted per call), against the same command list run by
 * the controller directly: the difference is what the call path adds over the kernels.
 */
import { Controller } from '../../src/index.js';
import { CommandList } from '../../src/worker/index.js';
import { summarize } from '../stats.js';

export interface CallLatency {
  device: string;
  directP50: number;
  callP50: number;
  callP99: number;
}

export async function measureCallLatency(kind: 'cuda' | 'metal' | 'cpu', quick: boolean): Promise<CallLatency> {
  const controller = await Controller.start({
    logger: 'silent',
    device: kind,
    workers: [{ module: new URL('../fixtures/gpu-list-worker.js', import.meta.url), strategy: 'thread' }],
  });
  try {
    const dev = controller.device;
    const x = await dev.upload(new Float32Array(4096).fill(1), [4096]);
    const y = dev.alloc('f32', [4096]);
    const list = new CommandList().scale(x, y, 0.5);
    const samples = quick ? 300 : 5000;
    const time = async (fn: () => Promise<unknown>): Promise<Float64Array> => {
      for (let i = 0; i < 200; i++) await fn();
      const out = new Float64Array(samples);
      for (let i = 0; i < samples; i++) {
        const t0 = process.hrtime.bigint();
        await fn();
        out[i] = Number(process.hrtime.bigint() - t0) / 1000;
      }
      return out;
    };
    const direct = summarize(await time(() => dev.run(list)));
    const call = summarize(await time(() => controller.call('gpu.scale@1', { x: x.readOnly(), y })));
    dev.free(x);
    dev.free(y);
    return { device: dev.description.name, directP50: direct.p50, callP50: call.p50, callP99: call.p99 };
  } finally {
    await controller.close();
  }
}
