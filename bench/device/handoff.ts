/**
 * A granted buffer handed to a thread worker, which reads it in place: call latency at 4 KiB
 * and at 64 MiB. With no copy the two are the same; a copying transport would add ~10 ms per
 * 64 MiB.
 */
import { Controller } from '../../src/index.js';
import { summarize } from '../stats.js';

export async function measureHandoff(quick: boolean): Promise<{ small: number; large: number }> {
  const controller = await Controller.start({
    logger: 'silent',
    device: 'cpu',
    workers: [{ module: new URL('../fixtures/tensor-peek-worker.js', import.meta.url), strategy: 'thread' }],
  });
  try {
    const result: number[] = [];
    for (const elements of [1024, 16 << 20]) {
      const t = controller.device.alloc('f32', [elements]);
      controller.device.view(t).fill(1);
      const x = t.readOnly();
      const samples = new Float64Array(quick ? 200 : 3000);
      for (let i = 0; i < 100; i++) await controller.call('tensor.peek@1', { x });
      for (let i = 0; i < samples.length; i++) {
        const t0 = process.hrtime.bigint();
        await controller.call('tensor.peek@1', { x });
        samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
      }
      result.push(summarize(samples).p50);
      controller.device.free(t);
    }
    return { small: result[0]!, large: result[1]! };
  } finally {
    await controller.close();
  }
}
